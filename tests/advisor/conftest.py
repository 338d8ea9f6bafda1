"""Fixtures for the advisor tests: a candidate on real candles, a context, the fake LLM."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from kmg_autotrader.advisor import Advisor, AdvisorContext, CandleSummary, build_advisor
from kmg_autotrader.config import Settings
from kmg_autotrader.domain import Candidate, Candle, Regime, Side, Signal
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.storage.repositories import Repositories
from tests.data import BTC_USDT_CSV
from tests.fakes.fake_llm_server import FakeLlmServer

FIVE_MIN = 300_000


def load_candles(limit: int | None = None) -> list[Candle]:
    """Real BTC/USDT 5m candles (the packaged sample set, see tests/data)."""
    out: list[Candle] = []
    with BTC_USDT_CSV.open() as handle:
        for row in csv.DictReader(handle):
            out.append(
                Candle(
                    int(row["timestamp"]),
                    float(row["open"]),
                    float(row["high"]),
                    float(row["low"]),
                    float(row["close"]),
                    float(row["volume"]),
                )
            )
            if limit and len(out) >= limit:
                break
    return out


def make_candidate(candles: list[Candle], index: int, side: Side = Side.BUY) -> Candidate:
    """A buy candidate on the close of ``candles[index]`` with 1 % stop and 2 % target."""
    last = candles[index]
    price = last.close
    signal = Signal(
        symbol="BTC/USDT",
        timeframe="5m",
        timestamp=last.timestamp,
        side=side,
        rule="ema_cross",
        strength=0.7,
        price=price,
        reason="EMA 9 crossed above EMA 21 with RSI 56",
        regime=Regime.TREND_UP,
        indicators={"ema_9": price * 1.001, "ema_21": price * 0.999, "rsi_14": 56.0},
    )
    return Candidate(
        symbol="BTC/USDT",
        timeframe="5m",
        timestamp=last.timestamp,
        side=side,
        price=price,
        stop_loss=price * 0.99 if side is Side.BUY else None,
        take_profit=price * 1.02 if side is Side.BUY else None,
        confidence=0.7,
        expected_move=0.01,
        strategy="default",
        regime=Regime.TREND_UP,
        signals=(signal,),
    )


def make_context(candles: list[Candle], index: int) -> AdvisorContext:
    """Context with a real candle summary and a small risk state."""
    return AdvisorContext(
        candles=CandleSummary.from_candles(candles[: index + 1], FIVE_MIN),
        risk_state={"equity": 10_000.0, "drawdown_pct": 0.4, "open_exposure_pct": 0.0},
    )


@pytest.fixture(scope="session")
def candles() -> list[Candle]:
    """The first 2,000 real candles."""
    return load_candles(2000)


@pytest.fixture
def candidate(candles: list[Candle]) -> Candidate:
    """A buy candidate at candle 600."""
    return make_candidate(candles, 600)


@pytest.fixture
def context(candles: list[Candle]) -> AdvisorContext:
    """The context at candle 600."""
    return make_context(candles, 600)


def good_answer(candidate: Candidate, **overrides: Any) -> dict[str, Any]:
    """A valid buy answer for ``candidate``."""
    price = candidate.price
    body: dict[str, Any] = {
        "reasoning": "Trend is up, momentum positive, volatility moderate; agree with the buy.",
        "risks": ["reversal at resistance"],
        "action": "buy",
        "confidence": 0.6,
        "entry": price,
        "stop_loss": round(price * 0.993, 2),
        "take_profit": round(price * 1.015, 2),
        "horizon_minutes": 120,
    }
    body.update(overrides)
    return body


@pytest.fixture
def fake_llm() -> Iterator[FakeLlmServer]:
    """A fake OpenAI-compatible server on loopback."""
    with FakeLlmServer() as server:
        yield server


@pytest.fixture
def clock(candidate: Candidate) -> SimulatedClock:
    """Simulated time: the candidate's candle close."""
    return SimulatedClock(candidate.timestamp + FIVE_MIN)


AdvisorFactory = Callable[..., Advisor]


@pytest.fixture
async def make_advisor(
    repos: Repositories, clock: SimulatedClock, fake_llm: FakeLlmServer
) -> AsyncIterator[AdvisorFactory]:
    """Builds an advisor against the fake LLM; keyword arguments override settings. Every
    advisor made is closed (its HTTP pool released) when the test ends."""
    made: list[Advisor] = []

    def factory(**overrides: Any) -> Advisor:
        replay = overrides.pop("replay", False)
        sink = overrides.pop("audit_sink", None)
        values: dict[str, Any] = {
            "openai_api_key": "sk-test-secret-key-123",
            "openai_base_url": fake_llm.base_url,
            "openai_model": "gpt-4o-mini",
            "advisor_mode": "advisory",
            "llm_timeout_seconds": 2.0,
            "gpt_call_limit_per_hour": 10,
            "advisor_symbol_cooldown_minutes": 0,
        }
        values.update(overrides)
        settings = Settings(_env_file=None, **values)
        advisor = build_advisor(
            settings,
            repos,
            clock,
            replay=replay,
            audit_sink=sink,
            client_options={"retry_wait_s": 0.0, "max_attempts": 3},
        )
        made.append(advisor)
        return advisor

    yield factory
    for advisor in made:
        await advisor.aclose()
