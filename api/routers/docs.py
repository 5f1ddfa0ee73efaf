"""`/docs`: the OpenAPI document in Swagger UI, every file of it served by the API itself.

FastAPI's own page loads Swagger UI from a CDN with an inline script: blank offline, and
impossible under a strict Content-Security-Policy. This one is `api/docs/index.html`, its script
`docs.js`, and Swagger UI's files vendored in `api/docs/swagger-ui/` (see SOURCE.md there).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"

# Only this origin's files, and only /openapi.json to fetch (and the API, with "Try it out").
# Swagger UI's stylesheet draws its icons as data: images, hence `img-src data:`: an image
# can neither run nor send anything.
_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs() -> RedirectResponse:
    return RedirectResponse("/docs/")


class DocsFiles(StaticFiles):
    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Content-Security-Policy"] = _CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-cache"  # revalidated (ETag): an upgrade shows at once
        return response


def mount_docs(app: FastAPI) -> None:
    """`/docs/` is the page; `/docs/docs.js`, `/docs/swagger-ui/…` its files."""
    app.include_router(router)
    app.mount("/docs", DocsFiles(directory=DOCS_DIR, html=True), name="docs")
