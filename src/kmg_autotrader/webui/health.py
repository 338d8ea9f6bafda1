"""Health for ``GET /health``: from the running bot when it passes a provider, else from the
records (newest equity point, newest error event, stored breaker and control state).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kmg_autotrader import __version__
from kmg_autotrader.autopilot.health import advisor_health
from kmg_autotrader.config import Settings
from kmg_autotrader.domain.clock import now_ms
from kmg_autotrader.storage.repositories import Repositories

HealthProvider = Callable[[], dict[str, Any]]

STALE_CANDLES = 3  # equity older than this many candles means the feed is not flowing


class DatabaseHealth:
    """A health provider that reads what the bot recorded (for ``kmg web`` on its own)."""

    def __init__(self, settings: Settings, repos: Repositories) -> None:
        self.settings = settings
        self.repos = repos
        self.mode = settings.trading_mode

    def _advisor_status(self, now: int) -> str:
        """What the audit log says of the advisor lately: ``off`` (ADVISOR_MODE=off, or no key,
        no base URL and no local model), ``failing`` (its newest call got no usable answer),
        ``budget_exhausted`` (the hourly budget is used up) or ``ok``."""
        settings = self.settings
        if settings.advisor_mode == "off":
            return "off"
        if (
            settings.llm_provider != "local"
            and settings.openai_api_key is None
            and settings.openai_base_url is None
        ):
            return "off (no OPENAI_API_KEY or OPENAI_BASE_URL)"
        calls = self.repos.advisor_calls
        newest = calls.recent(self.mode, limit=1)
        used = calls.count_since(now - 3_600_000)
        return advisor_health(
            {
                "mode": settings.advisor_mode,
                "last_fallback": newest[0].get("fallback") if newest else None,
                "calls_last_hour": used,
                "budget_per_hour": settings.gpt_call_limit_per_hour,
            }
        )

    def _breaker_state(self, now: int) -> str:
        """The risk manager's stored breaker and daily kill-switch, as the bot reads them (a
        kill-switch of an earlier UTC day is over; a manual clear counts at once)."""
        from kmg_autotrader.risk.state import DbRiskStateStore
        from kmg_autotrader.risk.tracking import trips

        breaker, kill_switch = trips(DbRiskStateStore(self.repos.risk_state, self.mode).load(), now)
        if breaker:
            return "tripped:drawdown"
        if kill_switch:
            return "tripped:daily_loss"
        return "ok"

    def _exchange_unreachable(self, last_equity_at: int | None) -> dict[str, Any] | None:
        """The newest ``exchange_unreachable`` event when nothing newer says the exchange was
        reached (an ``exchange_connected`` event or an equity point), else None."""
        events = self.repos.events
        down = events.recent(self.mode, kind="exchange_unreachable", limit=1)
        if not down:
            return None
        since = int(down[0]["created_at"])
        up = events.recent(self.mode, kind="exchange_connected", limit=1)
        if up and int(up[0]["created_at"]) >= since:
            return None
        if last_equity_at is not None and last_equity_at >= since:
            return None
        return down[0]

    def __call__(self) -> dict[str, Any]:
        """The health dict (keys of :class:`~kmg_autotrader.webui.schemas.HealthResponse`)."""
        now = now_ms()
        latest = self.repos.equity.latest(self.mode)
        last_at = latest.timestamp if latest else None
        age = max(0.0, (now - last_at) / 1000) if last_at is not None else None
        if age is None:
            feed = "unknown"
        elif age * 1000 <= STALE_CANDLES * self.settings.timeframe_ms:
            feed = "ok"
        else:
            feed = "stale"
        errors = self.repos.events.recent(self.mode, limit=1, level="error")
        unreachable = self._exchange_unreachable(last_at)
        if unreachable is not None:  # a bot retrying an exchange it cannot reach at start
            feed = "exchange_unreachable"
            errors = [unreachable]
        breaker_state = self._breaker_state(now)
        control = self.repos.risk_state.get(self.mode, "control") or {}
        if feed == "unknown":
            status = "unknown"
        elif feed == "ok" and breaker_state == "ok":
            status = "ok"
        else:
            status = "degraded"
        return {
            "status": status,
            "feed_status": feed,
            "last_candle_at": last_at,
            "last_candle_age_s": age,
            "last_equity_at": last_at,
            "advisor_status": self._advisor_status(now),
            "breaker_state": breaker_state,
            "paused": bool(control.get("paused", False)),
            "last_error": errors[0]["message"] if errors else None,
            "last_error_at": errors[0]["created_at"] if errors else None,
            "version": __version__,
        }
