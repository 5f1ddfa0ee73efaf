"""The production files stay in step with the code they deploy."""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML

from devstack.devserver import DYNAMIC_CONFIG, search_attribute_types
from workflows.search_attributes import ALL

ROOT = Path(__file__).resolve().parents[2]


def test_compose_setup_registers_exactly_the_search_attributes_the_code_uses():
    script = (ROOT / "deploy" / "register-search-attributes.sh").read_text()
    listed = re.search(r'SEARCH_ATTRIBUTES="\n(.*?)"', script, re.DOTALL)
    assert listed is not None

    registered = dict(line.split(":") for line in listed.group(1).split())

    assert registered == search_attribute_types()
    assert set(registered) == {key.name for key in ALL}


def test_production_temporal_has_the_dev_servers_fairness_settings():
    production = YAML(typ="safe").load((ROOT / "deploy" / "temporal" / "dynamicconfig.yaml").read_text())

    assert {key: production.get(key) for key in DYNAMIC_CONFIG} == {
        key: [{"value": value}] for key, value in DYNAMIC_CONFIG.items()
    }
