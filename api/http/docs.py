"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc`, with every asset served by this
server: the offices' networks are closed, so nothing comes from a CDN. The assets are those the
`fastapi-offline` package ships (Swagger UI, ReDoc); the pages are FastAPI's own, under a
Content-Security-Policy that names no other host (the one inline script by its hash)."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

ASSETS = files("fastapi_offline") / "static"
ASSET_TYPES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
               "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}
ASSET_URL = "/docs/assets/"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def policy(html: str) -> str:
    """Only this server; the page's inline scripts by their hashes. Styles inline too (both
    interfaces set them as they render), images as data: URLs, ReDoc's worker from a blob."""
    scripts = ["'self'", *("'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
                           for script in _INLINE_SCRIPT.findall(html))]
    return (f"default-src 'none'; script-src {' '.join(scripts)}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src blob:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _page(made: HTMLResponse) -> HTMLResponse:
    html = bytes(made.body).decode()
    return HTMLResponse(html, headers={"Content-Security-Policy": policy(html), "Cache-Control": "no-store",
                                       "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"})


@router.get("/docs")
def swagger(request: Request) -> HTMLResponse:
    app = request.app
    return _page(get_swagger_ui_html(
        openapi_url=app.openapi_url, title=f"{app.title} — Swagger UI", oauth2_redirect_url=None,
        swagger_js_url=ASSET_URL + "swagger-ui-bundle.js", swagger_css_url=ASSET_URL + "swagger-ui.css",
        swagger_favicon_url=ASSET_URL + "favicon.png",
        swagger_ui_parameters={"validatorUrl": None}))  # no badge from validator.swagger.io


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    app = request.app
    return _page(get_redoc_html(
        openapi_url=app.openapi_url, title=f"{app.title} — ReDoc", redoc_js_url=ASSET_URL + "redoc.standalone.js",
        redoc_favicon_url=ASSET_URL + "favicon.png", with_google_fonts=False))


@router.get(ASSET_URL + "{name}")
def asset(name: Annotated[str, Path(pattern="^[a-z.-]+$", max_length=40)]) -> Response:
    kind = ASSET_TYPES.get(name)
    if kind is None:
        raise HTTPException(404)
    return Response((ASSETS / name).read_bytes(), media_type=kind, headers={"Cache-Control": "max-age=3600"})
