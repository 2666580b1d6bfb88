"""The browser pages: ``GET /admin`` (dashboard), ``GET /app`` (chat client).

The pages and their assets are static files of the ``switchboard.web``
package, served under ``/web/``. The pages log in and talk to the server
through the HTTP API and ``/v1/ws`` like any other client. ``GET /``
redirects to the chat client.

Every response carries a Content-Security-Policy that allows only this
origin's scripts, styles, images and connections, so injected markup cannot
load or send anything elsewhere.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["install_web"]

STATIC_PACKAGE = ("switchboard.web", "static")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; connect-src 'self';"
        " object-src 'none'; base-uri 'none'; form-action 'self';"
        " frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on each load (ETag), so an upgraded server's assets apply.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> Response:
    page = resources.files(STATIC_PACKAGE[0]).joinpath(STATIC_PACKAGE[1], name)
    return Response(
        page.read_bytes(),
        media_type="text/html; charset=utf-8",
        headers=SECURITY_HEADERS,
    )


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/app", status_code=307)


@router.get("/app")
async def chat_page() -> Response:
    """Serve the web chat client."""
    return _page("app.html")


@router.get("/admin")
async def admin_page() -> Response:
    """Serve the admin dashboard; its API calls need an admin's token."""
    return _page("admin.html")


class _Assets(StaticFiles):
    """Static files with the pages' security and caching headers."""

    async def get_response(self, path: str, scope: Scope) -> Any:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def install_web(app: FastAPI) -> None:
    """Add the pages' routes and the ``/web/`` assets to ``app``."""
    app.include_router(router)
    app.mount("/web", _Assets(packages=[STATIC_PACKAGE]), name="web")
