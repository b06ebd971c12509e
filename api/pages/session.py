"""Who is looking at a page: a session's token (api/http/auth.py `open_session`) kept in an
HttpOnly, SameSite=Strict cookie, checked by the same `Credentials` as the API's bearer tokens;
and `PageRoute`, which turns every failure of a page into a friendly HTML page with the right
status (never a 200 with an error).

The token signed in with is only ever in the sign-in form's body: never in the cookie, a URL (the
request log writes paths) or a page. Signing out (POST) revokes the session's token.

Forgery (CSRF): every form post (sign-in, appeal, sign-out) must come from this site's own pages:
its `Origin` is this site's, or, when a browser sends no Origin, its `Referer` is a page of this
site; `Origin: null`, another site, or neither header is refused (403 `cross-site-form`) before
anything else. The SameSite=Strict cookie is a second guard, not the only one.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlsplit

import structlog
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.http.auth import Principal
from api.http.deps import CredentialsDep, client_address, log_entry, throttled
from api.http.problems import (
    STORE_UNAVAILABLE,
    WRITE_CONFLICTS,
    Problem,
    conflict_problem,
    from_domain,
)
from domain.errors import DomainError

COOKIE = "appraisal_session"
MAX_FORM_BYTES = 64_000

log = structlog.get_logger("appraisal.pages")


class SignInNeeded(Exception):
    """No usable session cookie: `reason` is None when there was no cookie at all."""

    def __init__(self, reason: str | None = None, rule: str = "token-missing") -> None:
        self.reason = reason
        self.rule = rule
        super().__init__(reason or "sign in")


def session_principal(request: Request, credentials: CredentialsDep) -> Principal:
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInNeeded()
    throttle = throttled(request)
    try:
        principal = credentials.verify(token)
        if not principal.session:  # a cookie from before sessions were tokens of their own
            raise Problem(401, "session-required", "sign in again 请重新登录")
    except Problem as problem:
        throttle.failed(client_address(request))
        raise SignInNeeded(problem.detail, problem.rule) from None
    log_entry(request)["actor"] = principal.person
    request.state.viewer = principal  # for the error page's header
    return principal


ViewerDep = Annotated[Principal, Depends(session_principal)]


def set_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def same_origin(request: Request) -> None:
    """A form post from this site's own pages (see the module's doc), or 403 `cross-site-form`."""
    here = f"{request.url.scheme}://{request.url.netloc}"
    origin = request.headers.get("origin")
    if origin is None:
        referer = urlsplit(request.headers.get("referer", ""))
        origin = f"{referer.scheme}://{referer.netloc}" if referer.scheme and referer.netloc else None
        if origin is None:
            raise Problem(403, "cross-site-form", "a form posts here only from this site's pages: the "
                          "browser sent neither Origin nor Referer", field="origin")
    if origin != here:
        raise Problem(403, "cross-site-form", f"a form from {origin[:100]} may not post here", field="origin")


async def form_fields(request: Request) -> dict[str, str]:
    """A url-encoded form body (what an HTML form sends), checked to come from our own pages."""
    same_origin(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Problem(415, "form-encoding", "send the page's form (application/x-www-form-urlencoded)")
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise Problem(413, "form-size", f"a form of at most {MAX_FORM_BYTES} bytes")
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=50, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise Problem(422, "form-encoding", "the form is not valid UTF-8 text") from None
    return {key: values[0] for key, values in parsed.items()}


FormDep = Annotated[dict[str, str], Depends(form_fields)]


def safe_next(target: str | None, default: str = "/home") -> str:
    """A place to go back to after signing in: a path of this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


class PageRoute(APIRoute):
    """A page: answers every failure with an HTML page (the API's handlers in api/http/problems.py
    answer problem+json). A path it shares with an API query is the page's for a browser only: the
    queries come first and leave a browser's request to it (`api.http.reads.QueryRoute`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            from api.pages.layout import error_page, sign_in_page  # the templates need the routes

            try:
                return await handler(request)
            except SignInNeeded as needed:
                log_entry(request).update(outcome="refused", rule=needed.rule)
                if needed.reason is None and request.method == "GET":
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"/?next={quote(target, safe='/:?=&')}", status_code=303)
                response = sign_in_page(request, status=401, reason=needed.reason, rule=needed.rule)
                clear_session(response)
                return response
            except Problem as problem:
                return error_page(request, problem)
            except DomainError as error:
                return error_page(request, from_domain(error))
            except RequestValidationError as error:
                first = error.errors()[0] if error.errors() else {}
                where = ".".join(str(part) for part in first.get("loc", ())[1:])
                status = 404 if first.get("loc", ("",))[0] == "path" else 422
                return error_page(request, Problem(status, "request-parameters",
                                                   f"{where}: {first.get('msg', 'invalid')}", where))
            except StarletteHTTPException as exc:
                return error_page(request, Problem(exc.status_code, "http", str(exc.detail)))
            except STORE_UNAVAILABLE:
                return error_page(request, Problem(503, "store-unavailable", "the event store is unavailable",
                                                   headers={"Retry-After": "2"}))
            except WRITE_CONFLICTS:
                return error_page(request, conflict_problem())
            except Exception:
                log.exception("page_failed", path=request.url.path)
                return error_page(request, Problem(500, "internal", "an unexpected error; it was logged"))

        return page_handler
