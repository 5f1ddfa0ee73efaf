"""The merchant dashboard: static files at `/ui/` that call the same `/v1` API with the same token.

Nothing is built at run time: `api/static/` holds plain HTML, CSS and ES modules.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# The app loads only its own files and talks only to its own origin, so markup that a bug
# let in could neither run a script nor send data elsewhere.
_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/")


class DashboardFiles(StaticFiles):
    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Content-Security-Policy"] = _CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        # Revalidated each time (a 304 by ETag): after an upgrade no module comes from an old cache.
        response.headers["Cache-Control"] = "no-cache"
        return response


def dashboard_files() -> StaticFiles:
    """`/ui` serves index.html, `/ui/app.js` and the rest of `api/static/`."""
    return DashboardFiles(directory=STATIC_DIR, html=True)
