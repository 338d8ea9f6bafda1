"""Running the dashboard with uvicorn: alone (``kmg web``) or beside the bot (``kmg run``)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Any

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

    Run it as a task beside the bot (``asyncio.create_task(serve(...))``); cancelling the task
    shuts the server down. Unsafe settings raise ``WebSecurityError`` before anything binds.
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
    """The dashboard in a daemon thread with its own event loop (tests, synchronous callers)."""

    def __init__(self, app: FastAPI, settings: Settings, *, host: str | None = None, port: int = 0):
        self.server = build_server(app, settings, host=host, port=port)
        self._thread = threading.Thread(target=self.server.run, name="kmg-web", daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8000`` (the real port when 0 was asked for)."""
        host = self.server.config.host
        servers: Any = getattr(self.server, "servers", [])
        port = self.server.config.port
        for server in servers:
            for sock in server.sockets:
                port = sock.getsockname()[1]
        return f"http://{host}:{port}"

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Start and wait until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to stop and wait for its thread."""
        self.server.should_exit = True
        self._thread.join(timeout)
