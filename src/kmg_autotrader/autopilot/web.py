"""Runs the dashboard beside the bot, off the bot's event loop, with the bot as its controller.

The dashboard serves from its own thread and event loop (:class:`BackgroundServer`) and reads
the records through its own database engine, so a busy dashboard never delays a candle (issue
18: 100 requests/s on the shared loop halved the candle rate). Everything that touches the
bot itself (pause, resume, flatten, health, the risk-parameter store the risk manager reads) is
handed to the bot's loop with :class:`BotLoop` and its answer handed back: the dashboard's
threads never touch the bot's state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from loguru import logger
from sqlalchemy.engine import make_url

from kmg_autotrader.autopilot.bot import Bot
from kmg_autotrader.autopilot.control import TradingControl
from kmg_autotrader.autopilot.wiring import BotRuntime
from kmg_autotrader.config import Settings
from kmg_autotrader.storage.database import Database
from kmg_autotrader.storage.repositories import Repositories

# A call into the bot waits at most this long for the bot's loop (it answers within a candle's
# handling; longer means the loop is stuck, and the dashboard says so rather than hanging).
CALL_TIMEOUT_S = 10.0
# The heavy reads (/metrics, /equity, /signals, /trades) are answered from a copy this fresh (the
# live watcher's poll interval): a dashboard polled hard costs the bot's process a few
# computations a second, not one per request (it shares the interpreter with the bot).
READ_CACHE_SECONDS = 2.0


class BotLoop:
    """Runs calls into the bot on the bot's event loop, from the dashboard's threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, timeout: float = CALL_TIMEOUT_S):
        self.loop = loop
        self.timeout = timeout

    def _submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[Any]:
        async def call() -> Any:
            result = fn(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(call(), self.loop)

    async def run(
        self, fn: Callable[..., Any], *args: Any, timeout: float | None = -1.0, **kwargs: Any
    ) -> Any:
        """Await ``fn(*args, **kwargs)`` run on the bot's loop (from the dashboard's loop).

        The work is shielded: a request that ends early (shutdown, timeout) never cancels a
        flatten half-way. ``timeout`` None waits as long as the work takes.
        """
        future = asyncio.wrap_future(self._submit(fn, args, kwargs))
        limit = self.timeout if timeout is not None and timeout < 0 else timeout
        return await asyncio.wait_for(asyncio.shield(future), limit)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Block until ``fn(*args, **kwargs)`` ran on the bot's loop (from a worker thread)."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:  # already on the bot's loop: waiting for it would deadlock
            return fn(*args, **kwargs)
        return self._submit(fn, args, kwargs).result(self.timeout)


class BotWebController:
    """The dashboard's ``BotController`` over the running bot (actions run on its loop)."""

    def __init__(self, bot: Bot, on_bot: BotLoop, repos: Repositories | None = None) -> None:
        self.bot = bot
        self.on_bot = on_bot
        # the pause flag is stored (the bot reads it before every decision): read it there
        self._stored = TradingControl((repos or bot.p.repos).risk_state, bot.p.mode)

    async def pause(self, source: str) -> dict[str, Any]:
        """Stop new trades."""
        state = await self.on_bot.run(self.bot.pause, source)
        return {"message": "Trading paused: no new trades will open.", **state}

    async def resume(self, source: str) -> dict[str, Any]:
        """Take new trades again."""
        state = await self.on_bot.run(self.bot.resume, source)
        return {"message": "Trading resumed.", **state}

    async def flatten(self, source: str) -> dict[str, Any]:
        """Cancel every order and close every position now; pause so nothing new opens."""
        summary = await self.on_bot.run(self._flatten, source, timeout=None)
        lines = summary.lines()
        return {
            "message": "Flattened and paused. " + ("; ".join(lines) if lines else "Nothing open."),
            "status": "done" if summary.ok else "partial",
            "lines": lines,
        }

    async def _flatten(self, source: str) -> Any:
        """On the bot's loop: pause, then flatten."""
        self.bot.pause(source, "flatten")
        return await self.bot.flatten(source)

    def is_paused(self) -> bool:
        """True while new trades are paused (the stored flag the bot itself reads)."""
        return self._stored.is_paused()

    def health(self) -> dict[str, Any]:
        """The bot's health, read on its loop (for ``/health``)."""
        data: dict[str, Any] = self.on_bot.call(self.bot.refresh_health)
        return data


class BotRiskStore:
    """The risk-parameter store the bot's risk manager reads, each call run on the bot's loop
    (an edit applies to the very next decision, and never races one)."""

    def __init__(self, store: Any, on_bot: BotLoop) -> None:
        self.store = store
        self.on_bot = on_bot

    def current(self) -> tuple[int, Any]:
        """The newest version number and its parameters."""
        result: tuple[int, Any] = self.on_bot.call(self.store.current)
        return result

    def effective(self, env: Mapping[str, str] | None = None) -> Any:
        """Each parameter in effect with its source."""
        return self.on_bot.call(self.store.effective, env)

    def update(self, changes: dict[str, Any], *, source: str, comment: str = "") -> tuple[int, Any]:
        """Validate and store a change (errors come back as raised by the store)."""
        result: tuple[int, Any] = self.on_bot.call(
            self.store.update, changes, source=source, comment=comment
        )
        return result


def _own_database(db: Database) -> Database | None:
    """A second engine on the bot's database for the dashboard's reads (its own connection
    pool: 40 request threads never wait for, or make the bot wait for, a connection), or None
    for an in-memory SQLite database, which only its own engine can see."""
    url = make_url(db.url)
    if db.dialect == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return Database(db.url)


async def start_web(
    settings: Settings, repos: Repositories, runtime: BotRuntime
) -> Callable[[], Awaitable[None]]:
    """Start the dashboard in its own thread; returns the coroutine function that stops it."""
    from kmg_autotrader.webui.app import create_app
    from kmg_autotrader.webui.server import BackgroundServer

    # The dashboard's requests allocate enough to start full garbage collections, and each one
    # walked the bot's whole start-up heap with every thread stopped (190-340 ms stalls of the
    # bot and the API, measured): the start-up objects (modules, warm-up data) are frozen out
    # of those walks. Everything is still freed by reference counting as before.
    froze = gc.get_freeze_count() == 0  # a freeze made by someone else is left as it was
    gc.freeze()
    on_bot = BotLoop(asyncio.get_running_loop())
    database = _own_database(repos.db)
    web_repos = Repositories(database) if database is not None else repos
    # what the dashboard records (pause, resume, risk edits) reads in the bot's time too
    web_repos.events.clock = web_repos.alerts.clock = repos.events.clock
    controller = BotWebController(runtime.bot, on_bot, web_repos)
    try:
        app = create_app(
            settings,
            web_repos,
            controller=controller,
            risk_store=BotRiskStore(runtime.params, on_bot),  # the store the risk manager reads
            health_provider=controller.health,
            read_cache_seconds=READ_CACHE_SECONDS,
        )
        server = BackgroundServer(app, settings, port=settings.web_port)
        await asyncio.to_thread(server.start)
    except BaseException:
        if database is not None:
            database.dispose()
        if froze:
            gc.unfreeze()
        raise
    logger.info("dashboard: http://{}:{}", settings.web_host, settings.web_port)

    async def stop() -> None:
        try:
            await asyncio.to_thread(server.stop)
        finally:
            if database is not None:
                database.dispose()
            if froze:  # a process that runs on (tests, a later command) gets its heap back
                gc.unfreeze()

    return stop
