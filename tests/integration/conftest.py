from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio


@pytest_asyncio.fixture(autouse=True)
async def no_endpoints_left(api: httpx.AsyncClient) -> AsyncIterator[None]:
    """Each test starts with an empty registry, so events reach only its own endpoints."""
    yield
    for endpoint in (await api.get("/v1/endpoints")).json():
        await api.delete(f"/v1/endpoints/{endpoint['id']}")
