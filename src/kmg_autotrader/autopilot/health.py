"""The bot's health at a glance: what the dashboard, snapshots and alerts report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from kmg_autotrader import __version__
from kmg_autotrader.domain.clock import ms_to_iso, now_ms

FEED_OK = frozenset({"ok", "live", "websocket"})
BREAKER_OK = frozenset({"ok", "closed", "armed"})
# The newest candle older than this many timeframes (on the bot's clock: simulated in a demo)
# means the feed is not flowing, whatever the feed last said about itself.
STALE_CANDLES = 3
# Advisor fallbacks that mean the advisor is failing (cooldowns and replay misses do not).
ADVISOR_FAILING = frozenset({"unreachable", "llm_error", "invalid_answer", "advisor_error"})

AdvisorProbe = Callable[[], Mapping[str, Any]]


def advisor_health(status: Mapping[str, Any]) -> str:
    """``off`` | ``budget_exhausted`` | ``failing`` | ``ok`` from :meth:`Advisor.status`: what
    the advisor's last review and its hourly budget say now, not what it was configured as."""
    if not status.get("enabled", status.get("mode") != "off") or status.get("mode") == "off":
        return "off"
    used, budget = status.get("calls_last_hour"), status.get("budget_per_hour")
    last = status.get("last_fallback")
    if last == "budget_exhausted" or (
        isinstance(used, int) and isinstance(budget, int) and budget > 0 and used >= budget
    ):
        return "budget_exhausted"
    if last in ADVISOR_FAILING or status.get("reason"):
        return "failing"
    return "ok"


@dataclass
class HealthState:
    """Mutable health record the autopilot updates as things happen (times in UTC epoch ms).

    With ``timeframe_ms`` the feed counts as ``stale`` (and the bot as degraded) once the newest
    candle is older than :data:`STALE_CANDLES` timeframes; with ``advisor_probe`` (the advisor's
    ``status``) the advisor status is read live at every report.
    """

    started_at: int = field(default_factory=now_ms)
    version: str = __version__
    mode: str = "paper"
    feed_status: str = "unknown"  # e.g. websocket | rest_fallback | stale | down
    last_candle_at: int | None = None
    advisor_status: str = "unknown"  # ok | failing | budget_exhausted | off (see advisor_health)
    breaker_state: str = "ok"  # e.g. ok | tripped:daily_loss | kill_switch
    last_error: str | None = None
    last_error_at: int | None = None
    timeframe_ms: int | None = None
    advisor_required: bool = False  # ADVISOR_MODE=required: a failing advisor degrades the bot
    advisor_probe: AdvisorProbe | None = field(default=None, repr=False, compare=False)

    def record_error(self, message: str, at_ms: int | None = None) -> None:
        """Remember the newest error (already redacted by the caller)."""
        self.last_error = message[:500]
        self.last_error_at = at_ms if at_ms is not None else now_ms()

    def last_candle_age_s(self, at_ms: int | None = None) -> float | None:
        """Seconds since the last candle (None before the first one)."""
        if self.last_candle_at is None:
            return None
        return max(0.0, ((at_ms if at_ms is not None else now_ms()) - self.last_candle_at) / 1000)

    def feed_status_at(self, at_ms: int) -> str:
        """The feed status, ``stale`` when the newest candle is too old at ``at_ms``."""
        age = self.last_candle_age_s(at_ms)
        if self.timeframe_ms and age is not None and age * 1000 > STALE_CANDLES * self.timeframe_ms:
            return "stale"
        return self.feed_status

    def advisor_status_now(self) -> str:
        """The advisor's status read from its probe (the stored value without one)."""
        if self.advisor_probe is not None:
            try:
                self.advisor_status = advisor_health(self.advisor_probe())
            except Exception:  # health must answer even when the advisor cannot
                self.advisor_status = "unknown"
        return self.advisor_status

    def status_at(self, at_ms: int) -> str:
        """``ok`` when the feed is flowing (fresh candles) and the breaker is fine (and a
        required advisor is not failing), else ``degraded``."""
        ok = self.feed_status_at(at_ms) in FEED_OK and self.breaker_state in BREAKER_OK
        if self.advisor_required and self.advisor_status_now() in {"failing", "budget_exhausted"}:
            ok = False
        return "ok" if ok else "degraded"

    @property
    def status(self) -> str:
        """:meth:`status_at` now (wall clock)."""
        return self.status_at(now_ms())

    def to_dict(self, at_ms: int | None = None) -> dict[str, object]:
        """Plain JSON-ready dict, with derived ages and ISO times for people."""
        at = at_ms if at_ms is not None else now_ms()
        self.advisor_status_now()
        data: dict[str, object] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "advisor_probe"
        }
        data.update(
            status=self.status_at(at),
            feed_status=self.feed_status_at(at),
            last_candle_age_s=self.last_candle_age_s(at),
            uptime_s=max(0.0, (at - self.started_at) / 1000),
            started_at_iso=ms_to_iso(self.started_at),
        )
        return data
