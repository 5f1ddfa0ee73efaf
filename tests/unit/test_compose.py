"""docker-compose.yml is a valid Compose file (official spec, offline) and keeps the production shape."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from jsonschema import validators
from jsonschema.exceptions import ValidationError
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
# check-jsonschema's builtin schema `vendor.compose-spec`: the Compose Specification, vendored in the wheel.
SCHEMA = files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"

SERVICES = {"postgresql", "temporal", "temporal-setup", "temporal-ui", "api", "codec", "worker"}
ONE_SHOT = "temporal-setup"
REQUIRED_SUBSTITUTION = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]+\}$")  # ${NAME:?message}
OPTIONAL_SUBSTITUTION = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:-\}$")  # ${NAME:-}: from .env, or unset
SECRET_KEY = re.compile(r"PASSWORD|PWD|TOKEN|SECRET|_KEY$")


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return schema


def _validate(document: Any) -> None:
    schema = _schema()
    validator_class = validators.validator_for(schema)  # the Draft named by the schema's $schema
    validator_class.check_schema(schema)
    validator_class(schema).validate(document)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))  # resolves <<: merges
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def test_compose_file_is_valid_against_the_compose_spec(compose):
    assert _schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    _validate(compose)


def test_compose_spec_validation_rejects_an_unknown_key(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["bogus"] = 1
    with pytest.raises(ValidationError, match="bogus"):
        _validate(broken)


def test_the_production_services_exist(services):
    assert set(services) == SERVICES


def test_temporal_runs_on_postgresql(services):
    temporal = services["temporal"]
    assert temporal["image"].startswith("temporalio/")
    assert temporal["environment"]["DB"] == "postgres12"
    assert temporal["environment"]["POSTGRES_SEEDS"] == "postgresql"
    assert temporal["depends_on"]["postgresql"]["condition"] == "service_healthy"


def test_temporal_ui_is_published_on_the_hosts_loopback_only_and_points_at_temporal(services):
    ui = services["temporal-ui"]
    assert ui["ports"] == ["127.0.0.1:8233:8080"]  # no login of its own: never beyond the host
    assert ui["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert ui["environment"]["TEMPORAL_CODEC_ENDPOINT"] == "${CODEC_PUBLIC_URL:-http://localhost:8081}/codec"


def test_the_web_ui_decodes_through_the_operators_codec_service_on_the_hosts_loopback(services):
    codec, api = services["codec"], services["api"]
    assert "api.codec_server:create_codec_app" in codec["command"] and "8081" in codec["command"]
    assert codec["ports"] == ["127.0.0.1:8081:8081"]  # never published beyond the host
    assert not any("8081" in str(port) for port in api["ports"])
    # The codec decodes payloads only: endpoint credentials inside them stay sealed for it.
    assert "env_file" not in codec and "WEBHOOKS_SECRETS_KEY" not in codec["environment"]
    assert codec["environment"]["WEBHOOKS_TEMPORAL_UI_URL"] == api["environment"]["WEBHOOKS_TEMPORAL_UI_URL"]


def test_api_is_published_on_8000_with_a_healthcheck(services):
    api = services["api"]
    assert "8000:8000" in api["ports"]
    assert api["healthcheck"]["test"]


def test_only_the_merchants_api_is_published_beyond_the_hosts_loopback(services):
    published = {name: [str(port) for port in service.get("ports", [])] for name, service in services.items()}
    beyond_loopback = {name: ports for name, ports in published.items() if any(p.count(":") < 2 for p in ports)}
    on_loopback = [p for ports in published.values() for p in ports if p.count(":") == 2]

    assert beyond_loopback == {"api": ["8000:8000"]}
    assert all(port.startswith("127.0.0.1:") for port in on_loopback)


def test_worker_has_a_healthcheck_on_its_health_port(services):
    worker = services["worker"]
    port = worker["environment"]["WEBHOOKS_WORKER_HEALTH_PORT"]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(worker["healthcheck"]["test"])
    assert port != worker["environment"]["WEBHOOKS_WORKER_METRICS_PORT"]


def test_worker_can_be_scaled_and_stops_gracefully(services):
    worker = services["worker"]
    assert "ports" not in worker
    assert "container_name" not in worker
    assert worker["stop_grace_period"]


@pytest.mark.parametrize("name", ["api", "worker"])
def test_app_waits_for_setup_and_talks_to_temporal(services, name):
    service = services[name]
    assert service["depends_on"][ONE_SHOT]["condition"] == "service_completed_successfully"
    assert service["environment"]["WEBHOOKS_TEMPORAL_ADDRESS"] == "temporal:7233"


def test_setup_is_a_one_shot_running_the_search_attribute_script(services):
    setup = services[ONE_SHOT]
    assert setup["restart"] == "no"
    assert "/deploy/register-search-attributes.sh" in setup["entrypoint"]
    assert "./deploy/register-search-attributes.sh:/deploy/register-search-attributes.sh:ro" in setup["volumes"]
    assert (ROOT / "deploy" / "register-search-attributes.sh").is_file()


def test_every_long_running_service_has_a_restart_policy(services):
    for name, service in services.items():
        if name != ONE_SHOT:
            assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name


def test_required_secrets_come_from_required_substitutions(services):
    assert REQUIRED_SUBSTITUTION.match(services["postgresql"]["environment"]["POSTGRES_PASSWORD"])
    assert REQUIRED_SUBSTITUTION.match(services["api"]["environment"]["WEBHOOKS_API_TOKEN"])
    for name in ("api", "worker", "codec"):
        assert REQUIRED_SUBSTITUTION.match(services[name]["environment"]["WEBHOOKS_ENCRYPTION_KEY"]), name
    for name in ("api", "worker"):  # they seal and open endpoint credentials
        assert REQUIRED_SUBSTITUTION.match(services[name]["environment"]["WEBHOOKS_SECRETS_KEY"]), name


def test_no_literal_secret_values(services):
    for name, service in services.items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), name
        for key, value in environment.items():
            if SECRET_KEY.search(key):
                substituted = REQUIRED_SUBSTITUTION.match(str(value)) or OPTIONAL_SUBSTITUTION.match(str(value))
                assert substituted, f"{name}.{key} is a literal"
