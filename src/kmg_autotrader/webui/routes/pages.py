"""HTML pages (outside the OpenAPI document): login, dashboard, signal flow, risk, logs.

Pages are shells; their scripts read the JSON API with the session cookie. An unauthenticated
visit is sent to the login page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from loguru import logger

from kmg_autotrader import __version__
from kmg_autotrader.webui.auth import (
    SESSION_COOKIE,
    CredentialThrottle,
    Principal,
    SessionManager,
    check_csrf,
    client_of,
    optional_auth,
    served_over_tls,
)
from kmg_autotrader.webui.context import WebContext, get_context
from kmg_autotrader.webui.control import DatabaseController

router = APIRouter(include_in_schema=False)

PAGES = {
    "/": ("dashboard.html", "Dashboard"),
    "/ui/signals": ("signals.html", "Signal flow"),
    "/ui/risk": ("risk.html", "Risk"),
    "/ui/logs": ("logs.html", "Logs"),
}


def _safe_next(target: str | None) -> str:
    """Only a local page path (no open redirect to another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target if target.split("?")[0] in PAGES else "/"


def _render(request: Request, template: str, context: WebContext, **extra: Any) -> HTMLResponse:
    templates = request.app.state.templates
    values = {
        "mode": context.mode.value,
        "assistant_name": context.settings.assistant_name,
        "user_name": context.settings.user_name,
        "version": __version__,
        "symbols": context.settings.symbols,
        # without the bot in this process a flatten only pauses and asks for `kmg flatten`
        "bot_attached": not isinstance(context.controller, DatabaseController),
        **extra,
    }
    response: HTMLResponse = templates.TemplateResponse(request, template, values)
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(path: str) -> Any:
    template, title = PAGES[path]

    async def page(
        request: Request,
        context: WebContext = Depends(get_context),
        principal: Principal | None = Depends(optional_auth),
    ) -> Response:
        if principal is None:
            return RedirectResponse(
                f"/login?next={quote(path)}", status_code=status.HTTP_303_SEE_OTHER
            )
        return _render(
            request,
            template,
            context,
            title=title,
            page=path,
            csrf_token=principal.csrf_token or "",
        )

    page.__name__ = f"page_{template.split('.')[0]}"
    return page


for _path in PAGES:
    router.add_api_route(_path, _page(_path), methods=["GET"], response_class=HTMLResponse)


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request,
    next: str | None = None,
    context: WebContext = Depends(get_context),
    principal: Principal | None = Depends(optional_auth),
) -> Response:
    """The login form (the API token is the password)."""
    if principal is not None:
        return RedirectResponse(_safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
    sessions: SessionManager = request.app.state.sessions
    return _render(
        request,
        "login.html",
        context,
        title="Log in",
        page="/login",
        next=_safe_next(next),
        form_token=sessions.login_form_token(),
        error=None,
        token_generated=sessions.credentials.token_file is not None,  # never where: public
        csrf_token="",
    )


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    token: str = Form("", max_length=512),
    form_token: str = Form("", max_length=512),
    next: str = Form("/", max_length=512),
    context: WebContext = Depends(get_context),
) -> Response:
    """Check the token; on success set the session cookie and go to ``next``."""
    sessions: SessionManager = request.app.state.sessions
    throttle: CredentialThrottle = request.app.state.throttle
    client = client_of(request)
    error: str | None = None
    code = status.HTTP_401_UNAUTHORIZED
    if not sessions.check_login_form_token(form_token):
        error, code = "The form expired. Please try again.", status.HTTP_400_BAD_REQUEST
    elif not sessions.credentials.token_matches(token):
        # the right token always gets in: a throttle only slows wrong ones
        if throttle.failed(client, "login"):
            logger.warning(
                "{} failed dashboard logins from {} within {:.0f} s: throttling its logins",
                throttle.limits["login"] + 1,
                client,
                throttle.window_seconds,
            )
        elif not throttle.blocked(client, "login"):
            logger.warning("failed dashboard login from {}", client)
        if throttle.blocked(client, "login"):
            error, code = "Too many attempts. Wait a minute and try again.", 429
        else:
            error = "That token is not right."
    if error is not None:
        page = _render(
            request,
            "login.html",
            context,
            title="Log in",
            page="/login",
            next=_safe_next(next),
            form_token=sessions.login_form_token(),
            error=error,
            token_generated=sessions.credentials.token_file is not None,  # never where: public
            csrf_token="",
        )
        page.status_code = code
        if code == 429:
            page.headers["Retry-After"] = str(throttle.retry_after(client, "login"))
        return page
    throttle.succeeded(client, "login")
    value, _ = sessions.issue()
    redirect = RedirectResponse(_safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
    redirect.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=sessions.ttl_seconds,
        httponly=True,
        samesite="strict",
        secure=served_over_tls(request),
        path="/",
    )
    logger.info("dashboard login from {}", client)
    return redirect


@router.post("/logout")
async def logout(
    request: Request, principal: Principal | None = Depends(optional_auth)
) -> Response:
    """End the session (CSRF-checked) and go back to the login page."""
    if principal is not None:
        check_csrf(request, principal)
        request.app.state.sessions.revoke(principal)
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=served_over_tls(request),
    )
    return response
