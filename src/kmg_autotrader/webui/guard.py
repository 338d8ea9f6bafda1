"""The request guard: a pure ASGI middleware in front of every route.

It runs before FastAPI reads a body, so neither a huge nor an unauthenticated body ever reaches
the bot's event loop:

* **Body cap.** A ``Content-Length`` above :data:`MAX_BODY_BYTES` gets 413 at once; a body
  without one (chunked) is counted as it streams and gets 413 as soon as it passes the cap.
  The rest is never read: the answer says ``Connection: close``.
* **Authentication first.** A request that may carry a body (any method but GET/HEAD/OPTIONS)
  to a path other than the login form needs a valid bearer token or session before anything
  reads its body; otherwise 401 at once. A wrong bearer token is counted (and logged, never
  shown) on any path; past the throttle's limit it gets 429.
* **Host check.** Bound to loopback, a request must name us by a loopback name (DNS-rebinding
  guard), else 400.
* **Security headers** on every answer (CSP, no framing, ``no-store`` outside ``/static``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kmg_autotrader.config import Settings
from kmg_autotrader.webui.auth import (
    SAFE_METHODS,
    TOO_MANY_DETAIL,
    UNAUTHORIZED_DETAIL,
    authenticate,
    throttled,
)

MAX_BODY_BYTES = 64 * 1024
BODY_TOO_LARGE = f"request body too large: at most {MAX_BODY_BYTES // 1024} KB"
# Unsafe methods that need no authentication: the login form itself, and logout (which only
# ends a session it can verify).
PUBLIC_UNSAFE_PATHS = frozenset({"/login", "/logout"})

# Scripts, styles and data from this origin only: no CDN, no inline script, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


_CLOSE = {"Connection": "close"}  # the unread rest of the body makes the connection unusable


HOST_REFUSED = (
    "Host header not allowed: this dashboard answers to its own address only "
    "(127.0.0.1, localhost or WEB_HOST; DNS-rebinding guard)"
)
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """The host names a request may carry, or None for any.

    Bound to loopback, a browser may only call us by a loopback name: a page whose own name
    was re-pointed at 127.0.0.1 (DNS rebinding) sends *its* name and is refused. Bound to a
    public address (``API_TOKEN`` required) or behind a TLS proxy (``WEB_TLS_PROXY``: the
    proxy's name), any name is accepted.
    """
    if not settings.web_is_loopback or settings.web_tls_proxy:
        return None
    return LOOPBACK_NAMES | {settings.web_host.strip("[]").lower()}


def host_allowed(host: str | None, allowed: frozenset[str]) -> bool:
    """True for a Host header (``name[:port]``, ``[v6]:port``) whose name is allowed."""
    if host is None:
        return True  # HTTP/1.0 without Host: no browser sends that
    host = host.strip().lower()
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.rstrip(".") in allowed


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the cap (FastAPI re-raises it)."""

    def __init__(self) -> None:
        super().__init__(413, detail=BODY_TOO_LARGE, headers={"Connection": "close"})


def _with_security_headers(
    path: str, headers: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in headers}
    out = list(headers)
    cache = "public, max-age=3600" if path.startswith("/static/") else "no-store"
    for name, value in [*SECURITY_HEADERS.items(), ("Cache-Control", cache)]:
        raw = name.lower().encode("latin-1")
        if raw not in present:
            out.append((raw, value.encode("latin-1")))
    return out


async def send_error(
    send: Send, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    """Answer with the app's error shape (``{"detail", "errors"}``) without touching the body."""
    body = json.dumps({"detail": detail, "errors": []}).encode("utf-8")
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("latin-1")),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware: body cap, authentication before the body, security headers."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request's head, then pass it on with a counting ``receive``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _with_security_headers(path, message["headers"])}
            await send(message)

        headers = Headers(scope=scope)
        allowed: frozenset[str] | None = getattr(scope["app"].state, "allowed_hosts", None)
        if allowed is not None and not host_allowed(headers.get("host"), allowed):
            await send_error(send_secured, 400, HOST_REFUSED, _CLOSE)
            return
        declared = headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size < 0:
                await send_error(send_secured, 400, "invalid Content-Length", _CLOSE)
                return
            if size > self.max_body_bytes:
                await send_error(send_secured, 413, BODY_TOO_LARGE, _CLOSE)
                return
        method = scope.get("method", "GET")
        needs_auth = method not in SAFE_METHODS and path not in PUBLIC_UNSAFE_PATHS
        if needs_auth or "authorization" in headers:
            request = Request(scope)  # without receive: nothing here can read the body
            if authenticate(request) is None:
                retry_after = throttled(request)
                if retry_after is not None:
                    headers_429 = {"Retry-After": str(retry_after), **_CLOSE}
                    await send_error(send_secured, 429, TOO_MANY_DETAIL, headers_429)
                    return
                if needs_auth:
                    headers_401 = {"WWW-Authenticate": "Bearer", **_CLOSE}
                    await send_error(send_secured, 401, UNAUTHORIZED_DETAIL, headers_401)
                    return

        received = 0
        limit = self.max_body_bytes

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        await self.app(scope, counted_receive, send_secured)
