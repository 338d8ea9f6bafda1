"""Builders for risk tests: a market, candidates, portfolios and a manager on a simulated clock."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kmg_autotrader.domain import Candidate, ExecutionMode, MarketInfo, Mode, Regime, Side
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.risk import (
    InMemoryRiskStateStore,
    OpenPosition,
    PortfolioState,
    RiskManager,
    RiskParams,
    RiskParamsStore,
)
from kmg_autotrader.risk.events import RiskEvent

# 2024-03-01 10:00:00 UTC
T0 = 1_709_287_200_000
MINUTE = 60_000
D = Decimal


def btc_market(**overrides: Any) -> MarketInfo:
    """A Binance-like BTC/USDT market."""
    values: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "base": "BTC",
        "quote": "USDT",
        "amount_step": D("0.00001"),
        "price_step": D("0.01"),
        "min_amount": D("0.00001"),
        "min_cost": D("5"),
        "maker_fee": D("0.001"),
        "taker_fee": D("0.001"),
    }
    values.update(overrides)
    return MarketInfo(**values)


def candidate(
    side: Side = Side.BUY,
    *,
    symbol: str = "BTC/USDT",
    price: float = 50_000.0,
    stop_loss: float | None = 49_000.0,
    take_profit: float | None = 52_000.0,
    expected_move: float = 0.03,
    confidence: float = 0.7,
) -> Candidate:
    """A candidate; by default a buy risking 2 % of price to the stop."""
    return Candidate(
        symbol=symbol,
        timeframe="5m",
        timestamp=T0,
        side=side,
        price=price,
        stop_loss=stop_loss,
        take_profit=take_profit,
        confidence=confidence,
        expected_move=expected_move,
        strategy="test",
        regime=Regime.TREND_UP,
    )


def portfolio(
    equity: str | Decimal = "10000",
    cash: str | Decimal | None = None,
    positions: dict[str, tuple[str, str, str]] | None = None,
    holdings: dict[str, str] | None = None,
) -> PortfolioState:
    """A portfolio; ``positions`` maps symbol → (amount, entry price, last price)."""
    opened = {
        symbol: OpenPosition(symbol, D(a), D(e), D(last))
        for symbol, (a, e, last) in (positions or {}).items()
    }
    return PortfolioState(
        equity=D(equity),
        cash=D(cash if cash is not None else equity),
        positions=opened,
        holdings={k: D(v) for k, v in (holdings or {}).items()},
    )


@dataclass
class Rig:
    """A manager with the knobs a test turns."""

    manager: RiskManager
    clock: SimulatedClock
    params: RiskParamsStore
    events: list[RiskEvent]

    def advance(self, minutes: float) -> None:
        self.clock.set(self.clock.now_ms() + int(minutes * MINUTE))


def build_rig(*, execution_mode: ExecutionMode = ExecutionMode.MARKET_ONLY, **params: Any) -> Rig:
    """An in-memory manager on a simulated clock; keyword arguments override RiskParams."""
    clock = SimulatedClock(T0)
    store = RiskParamsStore(None, RiskParams(**params))
    events: list[RiskEvent] = []
    manager = RiskManager(
        mode=Mode.PAPER,
        params=store,
        state=InMemoryRiskStateStore(),
        decisions=None,
        clock=clock,
        execution_mode=execution_mode,
        on_event=events.append,
    )
    return Rig(manager, clock, store, events)
