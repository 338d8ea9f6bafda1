"""Issue 18.16: health tells the real state: the advisor's (ok / failing / off / budget
exhausted, from what it did lately) and the feed's (stale once the newest candle is older than
three timeframes, on the bot's own clock: the simulated one in a demo).

Regression: the advisor status was the configured mode ("advisory") whatever happened, and the
bot said "ok" however old its newest candle was; the dashboard then showed "healthy" beside
"Last candle 1435 d ago" (it measured a demo's candle on the wall clock).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kmg_autotrader.autopilot.health import HealthState, advisor_health
from kmg_autotrader.autopilot.runner import run_demo
from kmg_autotrader.autopilot.wiring import BotRuntime
from kmg_autotrader.config import Settings, load_settings
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui.health import DatabaseHealth
from tests.fakes.fake_llm_server import FakeLlmServer, Reply, answer, error

TF = 300_000
T0 = 1_700_000_000_000
LIMIT = 3100  # the packaged BTC/USDT set has entry candidates before this
HOLD = {
    "reasoning": "Momentum is fading into resistance and volume is thin; better to wait here.",
    "risks": ["false breakout"],
    "action": "hold",
    "confidence": 0.8,
}


def test_the_bot_is_degraded_once_its_newest_candle_is_older_than_three_timeframes() -> None:
    health = HealthState(started_at=T0, timeframe_ms=TF)
    health.feed_status = "websocket"
    health.last_candle_at = T0
    fresh = health.to_dict(at_ms=T0 + 2 * TF)
    assert fresh["status"] == "ok" and fresh["feed_status"] == "websocket"
    old = health.to_dict(at_ms=T0 + 3 * TF + 1)
    assert old["status"] == "degraded" and old["feed_status"] == "stale"
    assert old["last_candle_age_s"] == (3 * TF + 1) / 1000


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"mode": "off", "enabled": False}, "off"),
        ({"mode": "advisory", "enabled": True, "last_fallback": None}, "ok"),
        ({"mode": "advisory", "enabled": True, "last_fallback": "cooldown"}, "ok"),
        ({"mode": "advisory", "enabled": True, "last_fallback": "unreachable"}, "failing"),
        ({"mode": "advisory", "enabled": True, "last_fallback": "invalid_answer"}, "failing"),
        (
            {"mode": "required", "enabled": True, "calls_last_hour": 10, "budget_per_hour": 10},
            "budget_exhausted",
        ),
        (
            {"mode": "advisory", "enabled": True, "last_fallback": "budget_exhausted"},
            "budget_exhausted",
        ),
    ],
)
def test_advisor_health_from_its_status(status: dict[str, Any], expected: str) -> None:
    assert advisor_health(status) == expected


def _capture(seen: list[BotRuntime]) -> Any:
    async def web(
        _settings: Settings, _repos: Repositories, runtime: BotRuntime
    ) -> Callable[[], Awaitable[None]]:
        seen.append(runtime)

        async def stop_nothing() -> None:
            return None

        return stop_nothing

    return web


@pytest.mark.parametrize(
    ("reply", "limit_per_hour", "expected"),
    [
        (error(400), 100, "failing"),
        (answer(HOLD), 0, "budget_exhausted"),
        (answer(HOLD), 100, "ok"),
    ],
    ids=["failing", "budget_exhausted", "ok"],
)
def test_a_demos_health_reflects_what_the_advisor_did_on_the_simulated_clock(
    tmp_path: Path, reply: Reply, limit_per_hour: int, expected: str
) -> None:
    seen: list[BotRuntime] = []
    with FakeLlmServer(default=reply) as llm:
        settings = load_settings(
            None,
            data_dir=tmp_path / "data",
            openai_base_url=llm.base_url,
            openai_api_key="sk-test-not-a-real-key-000",
            advisor_mode="advisory",
            gpt_call_limit_per_hour=limit_per_hour,
            advisor_symbol_cooldown_minutes=0,
        )
        summary = asyncio.run(run_demo(settings, speed=0, limit=LIMIT, web=_capture(seen)))
    assert summary.candidates >= 1
    assert bool(llm.requests) == (limit_per_hour > 0)  # a budget of 0 sends nothing
    bot = seen[0].bot
    now = bot.p.clock.now_ms()  # the replay's time, 2023: not the wall clock's
    health = bot.p.health.to_dict(now)
    assert health["advisor_status"] == expected
    assert health["status"] == "ok"  # the newest candle closed "now" on the demo's clock
    assert health["last_candle_age_s"] is not None and health["last_candle_age_s"] < TF / 1000
    later = bot.p.health.to_dict(now + 4 * TF)
    assert later["status"] == "degraded" and later["feed_status"] == "stale"
    # `kmg web --demo` reads the same advisor state from the records
    database = open_database(f"sqlite:///{(tmp_path / 'data' / 'demo.sqlite').resolve()}")
    try:
        recorded = DatabaseHealth(settings, Repositories(database))()
    finally:
        database.dispose()
    assert recorded["advisor_status"] == expected
