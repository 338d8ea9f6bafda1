"""What every route needs, bundled once per app and handed out as a FastAPI dependency."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse

from kmg_autotrader.config import Settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.logging_setup import REDACTOR
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui.control import BotController
from kmg_autotrader.webui.events import EventBus
from kmg_autotrader.webui.health import HealthProvider
from kmg_autotrader.webui.risk_store import RiskStore

T = TypeVar("T")


@dataclass
class WebContext:
    """The app's collaborators. ``mode`` is the one every query filters on."""

    settings: Settings
    repos: Repositories
    controller: BotController
    risk_store: RiskStore
    health: HealthProvider
    bus: EventBus
    stream_max_seconds: float = 300.0
    cache: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (key, value)

    @property
    def mode(self) -> Mode:
        """The trading mode this dashboard shows."""
        return self.settings.trading_mode


def get_context(request: Request) -> WebContext:
    """FastAPI dependency: the app's :class:`WebContext`."""
    context: WebContext = request.app.state.context
    return context


async def maybe_await(value: T | Awaitable[T]) -> T:
    """The value, awaited first when it is awaitable (controllers may be sync or async)."""
    if inspect.isawaitable(value):
        return await value
    return value


def redact(text: str) -> str:
    """``text`` without any configured secret or secret-looking string."""
    return REDACTOR(text)


class SafeJSONResponse(JSONResponse):
    """JSON response that passes through the secret redactor: no secret ever leaves the app."""

    def render(self, content: Any) -> bytes:
        """Serialise like Starlette, then redact."""
        text = json.dumps(
            content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        )
        return redact(text).encode("utf-8")
