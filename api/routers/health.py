"""`/healthz`: whether the API can reach Temporal."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response, status
from pydantic import BaseModel
from temporalio.service import RPCError

from api.deps import ClientDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str  # "ok" or "unavailable"
    temporal: str  # "reachable", or why not


@router.get("/healthz", responses={503: {"model": Health, "description": "Temporal is unreachable"}})
async def healthz(client: ClientDep, response: Response) -> Health:
    try:
        await client.service_client.check_health(timeout=timedelta(seconds=2))
    except (RPCError, RuntimeError) as err:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="unavailable", temporal=str(err) or type(err).__name__)
    return Health(status="ok", temporal="reachable")
