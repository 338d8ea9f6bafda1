"""The FastAPI app factory: API routers, pages, static files, security headers, error shapes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from loguru import logger
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from kmg_autotrader import __version__
from kmg_autotrader.config import Settings
from kmg_autotrader.logging_setup import REDACTOR
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui.auth import CredentialThrottle, SessionManager, require_auth
from kmg_autotrader.webui.context import SafeJSONResponse, WebContext
from kmg_autotrader.webui.control import BotController, DatabaseController
from kmg_autotrader.webui.events import ChangeWatcher, EventBus
from kmg_autotrader.webui.guard import RequestGuard, allowed_hosts
from kmg_autotrader.webui.health import DatabaseHealth, HealthProvider
from kmg_autotrader.webui.keys import WebCredentials, prepare_credentials
from kmg_autotrader.webui.openapi import build_openapi
from kmg_autotrader.webui.read_cache import ReadCache, ReadCacheMiddleware
from kmg_autotrader.webui.revocations import REVOKED_FILE
from kmg_autotrader.webui.risk_store import RiskStore, default_risk_store
from kmg_autotrader.webui.routes import API_ROUTERS, pages
from kmg_autotrader.webui.routes.risk import RiskValidationError

PACKAGE_DIR = Path(__file__).parent


def _error(status_code: int, detail: str, errors: list[dict[str, str]] | None = None) -> Response:
    return SafeJSONResponse({"detail": detail, "errors": errors or []}, status_code=status_code)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route fully matches on this path (routers may be nested)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        response = _error(exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        if exc.status_code == 405:
            # Starlette names only the first route's methods (OPTIONS /risk said GET alone)
            # (static files, below a mount, are the only 405 without a route here: GET, HEAD)
            allowed = _allowed_methods(request) or ["GET", "HEAD"]
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ())]
            if loc and loc[0] in {"body", "query", "path", "header", "cookie"}:
                loc = loc[1:]
            message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
            errors.append({"field": ".".join(loc) or "body", "message": message})
        return _error(422, "invalid request", errors)

    @app.exception_handler(RiskValidationError)
    async def risk_error(request: Request, exc: RiskValidationError) -> Response:
        return _error(
            409,
            "the change conflicts with the other risk parameters; nothing was changed",
            exc.errors,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on {} {}", request.method, request.url.path)
        return _error(500, "internal error (see the bot's log)")


def create_app(
    settings: Settings,
    repos: Repositories,
    *,
    controller: BotController | None = None,
    risk_store: RiskStore | None = None,
    health_provider: HealthProvider | None = None,
    event_bus: EventBus | None = None,
    credentials: WebCredentials | None = None,
    throttle: CredentialThrottle | None = None,
    poll_seconds: float = 2.0,
    stream_max_seconds: float = 300.0,
    read_cache_seconds: float = 0.0,
) -> FastAPI:
    """Build the dashboard app over ``repos`` for ``settings.trading_mode``.

    Raises :class:`~kmg_autotrader.webui.keys.WebSecurityError` when the settings are unsafe
    (a non-loopback host without ``API_TOKEN``). ``controller``, ``risk_store``,
    ``health_provider`` and ``event_bus`` come from the running bot; without them the app
    records requests in the database and reads health from the records.
    ``read_cache_seconds`` > 0 answers the heavy reads from a copy at most that old
    (:mod:`~kmg_autotrader.webui.read_cache`; beside the running bot).
    """
    credentials = credentials or prepare_credentials(settings)
    REDACTOR.add([*settings.secret_values(), credentials.api_token])
    bus = event_bus or EventBus()
    context = WebContext(
        settings=settings,
        repos=repos,
        controller=controller or DatabaseController(repos, settings.trading_mode),
        risk_store=risk_store or default_risk_store(settings, repos),
        health=health_provider or DatabaseHealth(settings, repos),
        bus=bus,
        stream_max_seconds=stream_max_seconds,
    )
    cache = ReadCache(read_cache_seconds) if read_cache_seconds > 0 else None
    watcher = ChangeWatcher(
        repos.db,
        settings.trading_mode,
        bus,
        interval_seconds=poll_seconds,
        on_change=cache.invalidate if cache is not None else None,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(watcher.run(), name="kmg-web-watcher")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="KMG Autotrader",
        version=__version__,
        description=(
            "Watch the bot, understand every decision, change the risk settings. Every "
            "endpoint except `/health` needs the API token (`Authorization: Bearer …`) or a "
            "browser session from the login page. Times are UTC epoch milliseconds."
        ),
        default_response_class=SafeJSONResponse,
        docs_url=None,  # Swagger UI loads from a CDN; the schema is at /openapi.json
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.context = context
    app.state.sessions = SessionManager(
        credentials, revocations_file=Path(settings.data_dir) / REVOKED_FILE
    )
    app.state.throttle = throttle or CredentialThrottle()
    app.state.allowed_hosts = allowed_hosts(settings)
    app.state.templates = Jinja2Templates(directory=str(PACKAGE_DIR / "templates"))
    app.state.watcher = watcher
    for router in API_ROUTERS:
        app.include_router(router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(PACKAGE_DIR / "static")), name="static")

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_auth)])
    async def openapi() -> dict[str, Any]:
        return build_openapi(app)

    _install_error_handlers(app)
    if cache is not None:  # inside the guard: Host check, body cap and headers come first
        app.add_middleware(ReadCacheMiddleware, cache=cache)
    # outermost: caps bodies and authenticates before any route reads a body
    app.add_middleware(RequestGuard)
    logger.info(
        "dashboard ready for {} mode ({} token)",
        settings.trading_mode.value,
        credentials.token_source,
    )
    return app
