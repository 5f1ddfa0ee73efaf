"""`/docs`: the OpenAPI document in Swagger UI, every file of it served by the API itself.

FastAPI's own page loads Swagger UI from a CDN with an inline script: blank offline, and
impossible under a strict Content-Security-Policy. This one is `api/docs/index.html`, its script
`docs.js`, and Swagger UI's files vendored in `api/docs/swagger-ui/` (see SOURCE.md there).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
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
_HEADERS = {
    "Content-Security-Policy": _CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated (ETag): an upgrade shows at once
}

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs() -> FileResponse:
    """The page itself at /docs, as FastAPI's was (its files name absolute paths, so /docs/ works too)."""
    return FileResponse(DOCS_DIR / "index.html", headers=_HEADERS)


class DocsFiles(StaticFiles):
    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(_HEADERS)
        return response


def mount_docs(app: FastAPI) -> None:
    """`/docs` (and `/docs/`) is the page; `/docs/docs.js`, `/docs/swagger-ui/…` its files."""
    app.include_router(router)
    app.mount("/docs", DocsFiles(directory=DOCS_DIR, html=True), name="docs")
