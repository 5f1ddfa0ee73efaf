"""`/healthz`: whether the API can reach Temporal."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response, status
from temporalio.service import RPCError

from api.deps import ClientDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(client: ClientDep, response: Response) -> dict[str, str]:
    try:
        await client.service_client.check_health(timeout=timedelta(seconds=2))
    except (RPCError, RuntimeError) as err:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "unavailable", "temporal": str(err) or type(err).__name__}
    return {"status": "ok", "temporal": "reachable"}
