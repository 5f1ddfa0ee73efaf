"""The one Temporal client each process opens."""

from __future__ import annotations

from temporalio.client import Client

from runtime.codec import data_converter
from settings import Settings


async def connect(settings: Settings, *, lazy: bool = False) -> Client:
    """A client with the service's converter (pydantic models, encrypted); `lazy` ones
    connect on first use (the API starts, and answers 503 on /healthz, while
    Temporal is still down)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.codec()),
        lazy=lazy,
    )
