"""Authentication: bearer token or signed session cookie, CSRF for cookie sessions, login throttle.

A browser logs in once with the API token and gets a signed, expiring, HttpOnly, SameSite=Strict
cookie. State-changing requests made with that cookie must also carry the session's CSRF token
in the ``X-CSRF-Token`` header (the page reads it from a meta tag) and, when the browser sends an
``Origin``, come from this origin. Bearer requests are not CSRF-prone (browsers never attach the
header by themselves), so they need only the token.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer
from loguru import logger

from kmg_autotrader.webui.keys import WebCredentials
from kmg_autotrader.webui.revocations import RevokedSessions

SESSION_COOKIE = "kmg_session"
SESSION_TTL_SECONDS = 12 * 60 * 60
LOGIN_FORM_TTL_SECONDS = 60 * 60
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="The API token (API_TOKEN, or the one-time token file under DATA_DIR).",
)


@dataclass(frozen=True)
class Principal:
    """Who made an authenticated request."""

    method: Literal["token", "session"]
    session_id: str | None = None
    csrf_token: str | None = None

    @property
    def source(self) -> str:
        """Short label recorded with the actions this principal takes."""
        return "web:token" if self.method == "token" else "web:session"


class SessionManager:
    """Signs and checks session cookies and login-form tokens."""

    def __init__(
        self,
        credentials: WebCredentials,
        *,
        ttl_seconds: int = SESSION_TTL_SECONDS,
        revocations_file: Path | None = None,
    ):
        self.credentials = credentials
        self.ttl_seconds = ttl_seconds
        self._sessions = URLSafeTimedSerializer(credentials.secret_key, salt="kmg-web-session")
        self._login_forms = URLSafeTimedSerializer(credentials.secret_key, salt="kmg-web-login")
        # logouts before expiry; in a file under DATA_DIR so a restart does not forget them
        self._revoked = RevokedSessions(revocations_file)

    def issue(self) -> tuple[str, Principal]:
        """A new signed session value and the principal it stands for."""
        principal = Principal("session", secrets.token_urlsafe(16), secrets.token_urlsafe(32))
        value = self._sessions.dumps(
            {
                "sid": principal.session_id,
                "csrf": principal.csrf_token,
                "tf": self.credentials.token_fingerprint,
            }
        )
        return value, principal

    def verify(self, value: str | None) -> Principal | None:
        """The principal of a valid, unexpired, unrevoked session cookie, else None."""
        if not value:
            return None
        try:
            data: Any = self._sessions.loads(value, max_age=self.ttl_seconds)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        sid, csrf, fingerprint = data.get("sid"), data.get("csrf"), data.get("tf")
        if not (isinstance(sid, str) and isinstance(csrf, str) and isinstance(fingerprint, str)):
            return None
        if not hmac.compare_digest(fingerprint, self.credentials.token_fingerprint):
            return None  # the token changed since this session was issued
        if sid in self._revoked:
            return None
        return Principal("session", sid, csrf)

    def revoke(self, principal: Principal) -> None:
        """Make a session unusable before it expires (logout), across restarts too."""
        if principal.session_id:
            self._revoked.add(principal.session_id, self.ttl_seconds)

    def login_form_token(self) -> str:
        """A signed, expiring token the login form must send back (login CSRF)."""
        return self._login_forms.dumps("login")

    def check_login_form_token(self, value: str) -> bool:
        """True for a login-form token this app issued within the last hour."""
        try:
            return self._login_forms.loads(value, max_age=LOGIN_FORM_TTL_SECONDS) == "login"
        except BadSignature:
            return False


CredentialKind = Literal["login", "bearer"]
#: wrong credentials allowed per client and kind within the window; more get 429
FAILURE_LIMITS: dict[str, int] = {"login": 5, "bearer": 20}
MAX_TRACKED_CLIENTS = 10_000


class CredentialThrottle:
    """Counts wrong credentials per client *and* kind (login form, bearer token).

    Past its limit within ``window_seconds`` a client's wrong credentials of that kind get 429
    instead of 401. The right token always passes, so a neighbour on 127.0.0.1 guessing cannot
    lock the owner out; and a wrong login does not block bearer calls, nor the other way round.
    """

    def __init__(self, limits: dict[str, int] | None = None, window_seconds: float = 60.0) -> None:
        self.limits = dict(limits or FAILURE_LIMITS)
        self.window_seconds = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = time.monotonic()
        failures = self._failures.get(key)
        if failures is None:
            if len(self._failures) >= MAX_TRACKED_CLIENTS:  # bound memory under a spray
                self._prune(now)
            # one more than the limit is all that is needed to know a client is over it
            failures = self._failures[key] = deque(maxlen=self.limits[key[1]] + 1)
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        return failures

    def _prune(self, now: float) -> None:
        cutoff = now - self.window_seconds
        self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > cutoff}
        while len(self._failures) >= MAX_TRACKED_CLIENTS:
            self._failures.pop(next(iter(self._failures)))

    def blocked(self, client: str, kind: CredentialKind) -> bool:
        """True while this client's wrong credentials of ``kind`` get 429."""
        return len(self._recent((client, kind))) > self.limits[kind]

    def failed(self, client: str, kind: CredentialKind) -> bool:
        """Count one wrong credential; True when it is the one that starts the throttling."""
        failures = self._recent((client, kind))
        was_blocked = len(failures) > self.limits[kind]
        failures.append(time.monotonic())
        return not was_blocked and len(failures) > self.limits[kind]

    def retry_after(self, client: str, kind: CredentialKind) -> int:
        """Whole seconds until this client's oldest counted failure leaves the window."""
        failures = self._recent((client, kind))
        if not failures:
            return 0
        return max(1, int(failures[0] + self.window_seconds - time.monotonic()) + 1)

    def succeeded(self, client: str, kind: CredentialKind) -> None:
        """Forget the failures of a client that presented the right credential."""
        self._failures.pop((client, kind), None)


def client_of(request: Request) -> str:
    """The peer address the throttle counts by."""
    return request.client.host if request.client else "unknown"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def served_over_tls(request: Request) -> bool:
    """True when the browser reaches us over https: directly, through the TLS proxy the
    settings name (``WEB_TLS_PROXY=true``), or through a proxy on this machine that says so
    (``X-Forwarded-Proto: https`` from 127.0.0.1 or ::1; a header from elsewhere is ignored)."""
    if request.url.scheme == "https":
        return True
    if request.app.state.context.settings.web_tls_proxy:
        return True
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return forwarded == "https" and _is_loopback(client_of(request))


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None or (origin == "null" and request.method in SAFE_METHODS):
        return True
    scheme = "https" if served_over_tls(request) else request.url.scheme
    expected = f"{scheme}://{request.headers.get('host', '')}"
    return hmac.compare_digest(origin.encode(), expected.encode())


UNAUTHORIZED_DETAIL = "authentication required: send 'Authorization: Bearer <API token>' or log in"
TOO_MANY_DETAIL = "too many wrong credentials from this client: wait, then try again"
_AUTH_KEY = "kmg.auth"  # scope key: the request's principal, worked out once
_THROTTLED_KEY = "kmg.throttled"  # scope key: Retry-After of a throttled wrong credential


def _unauthorized() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=UNAUTHORIZED_DETAIL,
        headers={"WWW-Authenticate": "Bearer"},
    )


def bearer_token(request: Request) -> str | None:
    """The credentials of an ``Authorization: Bearer …`` header, else None."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def authenticate(request: Request) -> Principal | None:
    """The principal of this request, or None (no CSRF check here; never reads the body).

    A bearer header wins over a cookie: a wrong token is refused even with a valid session.
    The answer is kept in the request scope, so the guard and the route agree and a failure
    is counted once.
    """
    if _AUTH_KEY in request.scope:
        cached: Principal | None = request.scope[_AUTH_KEY]
        return cached
    sessions: SessionManager = request.app.state.sessions
    token = bearer_token(request)
    principal: Principal | None
    if token is not None:
        principal = Principal("token") if sessions.credentials.token_matches(token) else None
        if principal is None:
            _bearer_failed(request)
    else:
        principal = sessions.verify(request.cookies.get(SESSION_COOKIE))
    request.scope[_AUTH_KEY] = principal
    return principal


def _bearer_failed(request: Request) -> None:
    """Count and log a wrong bearer token (never the token itself)."""
    throttle: CredentialThrottle = request.app.state.throttle
    client = client_of(request)
    where = f"{request.method} {request.url.path}"
    if throttle.failed(client, "bearer"):
        logger.warning(
            "{} wrong API tokens from {} within {:.0f} s (last on {}): wrong tokens from it "
            "get 429 for {} s; the right token still works",
            throttle.limits["bearer"] + 1,
            client,
            throttle.window_seconds,
            where,
            throttle.retry_after(client, "bearer"),
        )
    elif not throttle.blocked(client, "bearer"):
        logger.warning("wrong API token from {} on {}", client, where)
    if throttle.blocked(client, "bearer"):
        request.scope[_THROTTLED_KEY] = throttle.retry_after(client, "bearer")


def throttled(request: Request) -> int | None:
    """Retry-After seconds when this request's wrong credential is being throttled, else None."""
    value: int | None = request.scope.get(_THROTTLED_KEY)
    return value


def too_many_attempts(retry_after: int) -> HTTPException:
    """The 429 a throttled wrong credential gets."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=TOO_MANY_DETAIL,
        headers={"Retry-After": str(retry_after)},
    )


def check_csrf(request: Request, principal: Principal) -> None:
    """Refuse a cookie-authenticated state-changing request without this session's CSRF token."""
    if principal.method != "session" or request.method in SAFE_METHODS:
        return
    if not same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="cross-origin request refused")
    sent = request.headers.get(CSRF_HEADER, "")
    if not principal.csrf_token or not hmac.compare_digest(
        sent.encode(), principal.csrf_token.encode()
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="missing or invalid CSRF token")


async def require_auth(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),  # documents it
) -> Principal:
    """FastAPI dependency: a valid bearer token or session (plus CSRF for unsafe methods)."""
    principal = authenticate(request)
    if principal is None:
        retry_after = throttled(request)
        if retry_after is not None:
            raise too_many_attempts(retry_after)
        raise _unauthorized()
    check_csrf(request, principal)
    request.state.principal = principal
    return principal


async def optional_auth(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),  # documents it
) -> Principal | None:
    """FastAPI dependency: the principal when the request is authenticated, else None."""
    return authenticate(request)
