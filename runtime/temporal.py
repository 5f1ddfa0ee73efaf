"""The one Temporal client each process opens."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from settings import Settings


async def connect(settings: Settings, *, lazy: bool = False) -> Client:
    """A client with the pydantic converter; `lazy` ones connect on first use (the API
    starts, and answers 503 on /healthz, while Temporal is still down)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
    )
