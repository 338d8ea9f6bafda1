"""Stream events (WebSocket up/down, REST fallback…) and backoff with jitter."""

from __future__ import annotations

import inspect
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger

EventCallback = Callable[[str, str, dict[str, Any]], Awaitable[None] | None]


async def emit_event(
    callback: EventCallback | None, kind: str, message: str, details: dict[str, Any]
) -> None:
    """Log an event and hand it to ``callback`` (sync or async); a failing callback is logged."""
    logger.info("[{}] {}", kind, message)
    if callback is None:
        return
    try:
        result = callback(kind, message, details)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:  # a broken recorder must not stop market data
        logger.error("event callback failed for {}: {}", kind, exc)


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with full jitter: delay k is uniform in [base, min(cap, base·2^k)]."""

    base: float = 1.0
    cap: float = 60.0
    attempt: int = 0
    rng: random.Random | None = None

    def next_delay(self) -> float:
        """The next delay in seconds (and count the attempt)."""
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt += 1
        rng = self.rng or random
        return rng.uniform(self.base, max(self.base, ceiling))

    def reset(self) -> None:
        """Back to the first delay (after a healthy connection)."""
        self.attempt = 0
