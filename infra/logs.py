"""Structured logs: one JSON object a line, with the delivery it is about when there is one."""

from __future__ import annotations

import logging
import sys

import temporalio.activity
import temporalio.workflow
from pythonjsonlogger.json import JsonFormatter

from domain.ids import is_delivery_id

_HANDLER_NAME = "webhooks-json"


class DeliveryIdFilter(logging.Filter):
    """Adds `delivery_id` from the Temporal context the SDK puts on workflow and activity records."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = getattr(record, "temporal_activity", None) or getattr(record, "temporal_workflow", None)
        if isinstance(context, dict) and is_delivery_id(str(context.get("workflow_id", ""))):
            record.delivery_id = context["workflow_id"]
        return True


def configure_json_logging(level: int = logging.INFO) -> None:
    """Route the root logger and uvicorn's loggers to one JSON handler on stderr (idempotent)."""
    root = logging.getLogger()
    if any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            # ISO 8601 in UTC ("2026-06-02T09:14:03.512345+00:00"), not asctime's local "2026-06-02 11:14:03,512".
            timestamp="time",
        )
    )
    handler.addFilter(DeliveryIdFilter())
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    # The delivery activity logs each attempt itself; httpx would repeat it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The Temporal context becomes fields of the line, not text appended to the message.
    temporalio.activity.logger.activity_info_on_message = False
    temporalio.workflow.logger.workflow_info_on_message = False
