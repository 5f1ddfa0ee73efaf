"""Log lines are JSON objects, and a line about a delivery names it."""

from __future__ import annotations

import io
import json
import logging

from pythonjsonlogger.json import JsonFormatter

from infra.logs import DeliveryIdFilter


def _line(**extra: object) -> dict[str, object]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("{levelname}{message}", style="{"))
    handler.addFilter(DeliveryIdFilter())
    logger = logging.Logger("probe")
    logger.addHandler(handler)
    logger.info("POST attempt 1: delivered", extra=extra)
    parsed: dict[str, object] = json.loads(stream.getvalue())
    return parsed


def test_activity_lines_carry_the_delivery_id():
    line = _line(temporal_activity={"workflow_id": "delivery/evt-1/ep_2", "attempt": 1})

    assert line["delivery_id"] == "delivery/evt-1/ep_2"
    assert line["message"] == "POST attempt 1: delivered"


def test_lines_about_other_workflows_or_none_have_no_delivery_id():
    assert "delivery_id" not in _line(temporal_workflow={"workflow_id": "endpoints/default"})
    assert "delivery_id" not in _line()
