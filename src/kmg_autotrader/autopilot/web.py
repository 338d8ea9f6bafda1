"""Runs the dashboard beside the bot, in the same event loop, with the bot as its controller."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from kmg_autotrader.autopilot.bot import Bot
from kmg_autotrader.autopilot.wiring import BotRuntime
from kmg_autotrader.config import Settings
from kmg_autotrader.storage.repositories import Repositories


class BotWebController:
    """The dashboard's ``BotController`` over the running bot."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    def pause(self, source: str) -> dict[str, Any]:
        """Stop new trades."""
        return {"message": "Trading paused: no new trades will open.", **self.bot.pause(source)}

    def resume(self, source: str) -> dict[str, Any]:
        """Take new trades again."""
        return {"message": "Trading resumed.", **self.bot.resume(source)}

    async def flatten(self, source: str) -> dict[str, Any]:
        """Cancel every order and close every position now; pause so nothing new opens."""
        self.bot.pause(source, "flatten")
        summary = await self.bot.flatten(source)
        lines = summary.lines()
        return {
            "message": "Flattened and paused. " + ("; ".join(lines) if lines else "Nothing open."),
            "status": "done" if summary.ok else "partial",
            "lines": lines,
        }

    def is_paused(self) -> bool:
        """True while new trades are paused."""
        return self.bot.is_paused()


async def start_web(
    settings: Settings, repos: Repositories, runtime: BotRuntime
) -> Callable[[], Awaitable[None]]:
    """Start the dashboard as a task; returns the coroutine function that stops it."""
    from kmg_autotrader.webui.server import serve

    bot = runtime.bot
    task = asyncio.create_task(
        serve(
            settings,
            repos,
            controller=BotWebController(bot),
            risk_store=runtime.params,  # the very store the risk manager reads
            health_provider=bot.refresh_health,
        ),
        name="kmg-web",
    )
    await asyncio.sleep(0.2)
    if task.done() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    logger.info("dashboard: http://{}:{}", settings.web_host, settings.web_port)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=5)

    return stop
