"""HealthState: the autopilot's health record."""

from __future__ import annotations

import json

from kmg_autotrader import __version__
from kmg_autotrader.autopilot.health import HealthState

T0 = 1_764_000_000_000


def test_defaults_and_to_dict() -> None:
    health = HealthState(started_at=T0)
    data = health.to_dict(at_ms=T0 + 5000)
    assert data["version"] == __version__
    assert data["status"] == "degraded"  # feed status unknown until the first candle
    assert data["uptime_s"] == 5.0
    assert data["last_candle_age_s"] is None
    assert data["started_at_iso"] == "2025-11-24T16:00:00Z"
    json.dumps(data)  # JSON-ready for snapshots and the web API


def test_updates() -> None:
    health = HealthState(started_at=T0, mode="live")
    health.feed_status = "websocket"
    health.last_candle_at = T0 + 1000
    assert health.status == "ok"
    assert health.last_candle_age_s(T0 + 61_000) == 60.0
    health.record_error("exchange timeout", at_ms=T0 + 2000)
    health.breaker_state = "tripped:daily_loss"
    data = health.to_dict(at_ms=T0 + 3000)
    assert data["status"] == "degraded"
    assert data["last_error"] == "exchange timeout"
    assert data["last_error_at"] == T0 + 2000
    assert data["mode"] == "live"
