"""Running the dashboard with uvicorn: alone (``kmg web``: :func:`serve` in the running loop)
or beside the bot (``kmg run``/``kmg demo``: :class:`BackgroundServer`, its own thread and loop)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI
from loguru import logger

from kmg_autotrader.config import Settings
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui.app import create_app
from kmg_autotrader.webui.control import BotController
from kmg_autotrader.webui.events import EventBus
from kmg_autotrader.webui.health import HealthProvider
from kmg_autotrader.webui.risk_store import RiskStore


class WebStartError(RuntimeError):
    """The dashboard could not start (e.g. its port is taken); the message says why."""


# Open live streams get this long to end when the server stops (they reconnect by themselves).
SHUTDOWN_GRACE_SECONDS = 3


def build_server(
    app: FastAPI, settings: Settings, *, host: str | None = None, port: int | None = None
) -> uvicorn.Server:
    """A uvicorn server for ``app`` on ``WEB_HOST:WEB_PORT`` (loguru does the logging)."""
    config = uvicorn.Config(
        app,
        host=host or settings.web_host,
        port=port if port is not None else settings.web_port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="on",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    return uvicorn.Server(config)


async def serve(
    settings: Settings,
    repos: Repositories,
    *,
    controller: BotController | None = None,
    risk_store: RiskStore | None = None,
    health_provider: HealthProvider | None = None,
    event_bus: EventBus | None = None,
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Serve the dashboard in the running event loop until cancelled or stopped.

    ``kmg web`` runs it alone; as a task (``asyncio.create_task(serve(...))``) cancelling the task
    shuts the server down. Beside the bot use :class:`BackgroundServer` instead: this loop's
    requests would wait for the bot's candles, and its candles for them. Unsafe settings raise
    ``WebSecurityError`` before anything binds.
    """
    app = create_app(
        settings,
        repos,
        controller=controller,
        risk_store=risk_store,
        health_provider=health_provider,
        event_bus=event_bus,
    )
    server = build_server(app, settings, host=host, port=port)
    # bind here: uvicorn would call sys.exit() on a taken port, which ends the bot's whole loop
    sock = bind_socket(server.config.host, server.config.port)
    logger.info("dashboard on http://{}:{}", server.config.host, server.config.port)
    task = asyncio.ensure_future(_serve_on(server, sock))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # a clean shutdown (streams closed, lifespan ended) rather than a cancelled uvicorn,
        # which would print a traceback from inside Starlette
        server.should_exit = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=SHUTDOWN_GRACE_SECONDS + 2)
        raise


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port``; :class:`WebStartError` when it is taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise WebStartError(f"cannot listen on {host}:{port}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise WebStartError(
            f"cannot listen on {host}:{port}: {reason} (set WEB_PORT or --port to another port)"
        ) from None
    sock.set_inheritable(True)
    return sock


async def _serve_on(server: uvicorn.Server, sock: socket.socket) -> None:
    """Run ``server`` on ``sock``; uvicorn's ``sys.exit`` becomes a :class:`WebStartError`."""
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        raise WebStartError(
            f"the dashboard stopped while starting (uvicorn exit {exc.code})"
        ) from None
    finally:
        sock.close()


class BackgroundServer:
    """The dashboard in a daemon thread with its own event loop.

    ``kmg run`` / ``kmg demo`` serve the dashboard this way beside the bot: every request
    (parsing, authentication, queries, JSON) runs on this thread's loop and its worker threads,
    never on the bot's event loop, so a busy dashboard cannot delay a candle. The socket is
    bound here, in the caller: a taken port raises :class:`WebStartError` at once.
    """

    def __init__(
        self, app: FastAPI, settings: Settings, *, host: str | None = None, port: int = 0
    ) -> None:
        self.server = build_server(app, settings, host=host, port=port)
        self._sock = bind_socket(self.server.config.host, self.server.config.port)
        self.port = int(self._sock.getsockname()[1])
        self.loop: asyncio.AbstractEventLoop | None = None  # the server's loop, once running
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kmg-web", daemon=True)

    @property
    def thread(self) -> threading.Thread:
        """The thread the server runs in."""
        return self._thread

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8000`` (the real port when 0 was asked for)."""
        host = self.server.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # kept for start() and the log, not lost
            self.error = exc
            logger.error("the dashboard stopped: {}: {}", type(exc).__name__, exc)

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await _serve_on(self.server, self._sock)

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Start and wait until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop(timeout=1.0)
                reason = f": {self.error}" if self.error is not None else ""
                raise WebStartError(f"the dashboard did not start{reason}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = SHUTDOWN_GRACE_SECONDS + 2) -> None:
        """Ask the server to stop and wait for its thread (open streams get the grace period;
        past ``timeout`` the server is told to quit at once)."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(1.0)
            logger.warning("the dashboard did not stop within {:g} s", timeout)
        if not self._thread.is_alive() and self._thread.ident is None:
            self._sock.close()  # never started: _serve_on did not take the socket
