"""The bot's health at a glance: what the dashboard, snapshots and alerts report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from kmg_autotrader import __version__
from kmg_autotrader.domain.clock import ms_to_iso, now_ms

FEED_OK = frozenset({"ok", "live", "websocket"})
BREAKER_OK = frozenset({"ok", "closed", "armed"})


@dataclass
class HealthState:
    """Mutable health record the autopilot updates as things happen (times in UTC epoch ms)."""

    started_at: int = field(default_factory=now_ms)
    version: str = __version__
    mode: str = "paper"
    feed_status: str = "unknown"  # e.g. websocket | rest_fallback | stale | down
    last_candle_at: int | None = None
    advisor_status: str = "unknown"  # e.g. ok | offline_fallback | budget_exhausted | off
    breaker_state: str = "ok"  # e.g. ok | tripped:daily_loss | kill_switch
    last_error: str | None = None
    last_error_at: int | None = None

    def record_error(self, message: str, at_ms: int | None = None) -> None:
        """Remember the newest error (already redacted by the caller)."""
        self.last_error = message[:500]
        self.last_error_at = at_ms if at_ms is not None else now_ms()

    def last_candle_age_s(self, at_ms: int | None = None) -> float | None:
        """Seconds since the last candle (None before the first one)."""
        if self.last_candle_at is None:
            return None
        return max(0.0, ((at_ms if at_ms is not None else now_ms()) - self.last_candle_at) / 1000)

    @property
    def status(self) -> str:
        """``ok`` when feed and breaker are fine, else ``degraded``."""
        ok = self.feed_status in FEED_OK and self.breaker_state in BREAKER_OK
        return "ok" if ok else "degraded"

    def to_dict(self, at_ms: int | None = None) -> dict[str, object]:
        """Plain JSON-ready dict, with derived ages and ISO times for people."""
        at = at_ms if at_ms is not None else now_ms()
        data: dict[str, object] = asdict(self)
        data.update(
            status=self.status,
            last_candle_age_s=self.last_candle_age_s(at),
            uptime_s=max(0.0, (at - self.started_at) / 1000),
            started_at_iso=ms_to_iso(self.started_at),
        )
        return data
