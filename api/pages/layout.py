"""Rendering the templates: every page with the same headers (no caching of personal data, no
framing, no script or style from elsewhere), and the error and sign-in pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from api.http.auth import Principal
from api.http.problems import Problem
from api.pages.labels import GRANTS, RULES_ZH, STATUS_EN, STATUS_ZH, label

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True

HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def page(request: Request, name: str, context: dict[str, Any], *, status: int = 200,
         viewer: Principal | None = None, headers: dict[str, str] | None = None) -> HTMLResponse:
    values = {"viewer": viewer, "viewer_roles": [label(GRANTS, r) for r in viewer.roles] if viewer else [],
              "set_aside": set_aside(request, viewer), **context}
    response = templates.TemplateResponse(request, name, values, status_code=status)
    response.headers.update({**HEADERS, **(headers or {})})
    return response


def set_aside(request: Request, viewer: Principal | None) -> list[dict[str, Any]]:
    """The events the read side set aside, for an admin's or an inspector's notice (others: none)."""
    if viewer is None or not viewer.sees_everything:
        return []
    queries = getattr(request.app.state, "queries", None)
    return queries.set_aside() if queries is not None else []


def error_page(request: Request, problem: Problem, viewer: Principal | None = None) -> HTMLResponse:
    context = {
        "status": problem.status, "title_zh": STATUS_ZH.get(problem.status, "出错了"),
        "title_en": STATUS_EN.get(problem.status, "Error"), "why_zh": RULES_ZH.get(problem.rule, ""),
        "detail": problem.detail, "rule": problem.rule, "field": problem.field,
    }
    viewer = viewer or getattr(request.state, "viewer", None)
    return page(request, "error.html", context, status=problem.status, viewer=viewer, headers=problem.headers)


def sign_in_page(request: Request, *, status: int = 200, reason: str | None = None, rule: str = "",
                 next_path: str = "") -> HTMLResponse:
    context = {"reason": reason, "reason_zh": RULES_ZH.get(rule, "令牌无效或已失效。" if reason else ""),
               "next_path": next_path}
    return page(request, "signin.html", context, status=status)
