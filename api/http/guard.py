"""The edge's guard (ASGI middleware), before any route: the headers every answer carries, and the
limits of a request's body.

- Every answer: `X-Content-Type-Options: nosniff`; `Cache-Control: no-store` unless the route set
  its own (the stylesheet; the pages set the same). Problem answers get both in
  `errors.respond`, the 500s of the server's last handler included.
- A body larger than `body_max_bytes`: 413 `body-size`, before it is read when its
  Content-Length says so. A JSON body nested deeper than `body_max_depth`: 422 `body-depth`,
  naming the top-level field it is in. Nothing is recorded; no route sees either.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.problems import Problem, respond

# A JSON string (escapes included) or a bracket: the strings are skipped whole, so brackets
# inside them do not count.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_STEPS = bytes(1 if b in b"[{" else 255 if b in b"]}" else b for b in range(256))  # +1, -1 as signed bytes


def too_deep(body: bytes, limit: int) -> str | None:
    """The top-level field (or `(body)`) holding a value nested deeper than `limit`, or None.
    A body with no more brackets than the limit cannot be: most are answered without a scan. The
    others are measured at C speed (strings dropped, each bracket a step of +1 or -1, the running
    sum's maximum: about 90 ms for 2 MB of brackets, where parsing that body takes seconds); only
    one found too deep is scanned token by token, for its field."""
    if body.count(b"{") + body.count(b"[") <= limit:
        return None
    steps = memoryview(_STRING.sub(b"", body).translate(_STEPS, _NOT_BRACKETS)).cast("b")
    if max(accumulate(steps), default=0) <= limit:
        return None
    depth, key = 0, None
    for match in _TOKENS.finditer(body):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
            if depth > limit:
                return key or "(body)"
        elif token in (b"}", b"]"):
            depth -= 1
        elif depth == 1:  # a string of the top-level object: the last one before a value is its key
            try:
                key = str(json.loads(token))
            except ValueError:
                key = None
    return "(body)"


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            kind = value.split(b";")[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


class Guard:
    def __init__(self, app: ASGIApp, *, max_bytes: int, max_depth: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        if scope["method"] in _BODILESS:
            await self.app(scope, receive, send_with_headers)
            return
        problem, body, more = None, b"", True
        for name, value in scope.get("headers") or ():
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                problem = self.too_large()
        while problem is None and more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay(b"", message, receive), send_with_headers)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                problem = self.too_large()
        if problem is None and _is_json(scope):
            field = too_deep(body, self.max_depth)
            if field is not None:
                problem = Problem(422, "body-depth", f"JSON nested more than {self.max_depth} levels deep "
                                  "(arrays and objects within each other) 嵌套层数过多", field)
        if problem is not None:
            await respond(problem, Request(scope))(scope, receive, send)
            return
        await self.app(scope, _replay(body, None, receive), send_with_headers)

    def too_large(self) -> Problem:
        return Problem(413, "body-size", f"a body of at most {self.max_bytes} bytes 请求正文过大", "(body)")


def _replay(body: bytes, last: Message | None, receive: Receive) -> Receive:
    """The body read here, once, as one message; then whatever the client sends next."""
    pending: list[Message] = [last or {"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
