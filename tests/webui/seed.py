"""A realistic small set of records for the dashboard tests (one mode, or both)."""

from __future__ import annotations

import math
from decimal import Decimal

from kmg_autotrader.domain import (
    FilterStep,
    Mode,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Regime,
    RiskDecision,
    Side,
    Signal,
)
from kmg_autotrader.storage.models import EquitySnapshotRow
from kmg_autotrader.storage.repositories import Repositories

START = 1_717_200_000_000  # 2024-06-01T00:00:00Z
STEP = 300_000  # 5 minutes


def seed(repos: Repositories, mode: Mode = Mode.PAPER, *, points: int = 288) -> dict[str, int]:
    """Equity curve, signals through every stage, advisor calls, orders, trades, events."""
    # one transaction for the curve (the repository writes one row per call: slow on PostgreSQL)
    rows = []
    for i in range(points):
        equity = Decimal(f"{10_000 + 250 * math.sin(i / 25) + 1.5 * i:.2f}")
        rows.append(
            EquitySnapshotRow(
                mode=mode.value,
                timestamp=START + i * STEP,
                equity=equity,
                cash=(equity * Decimal("0.7")).quantize(Decimal("0.01")),
                positions_value=(equity * Decimal("0.3")).quantize(Decimal("0.01")),
                details={},
            )
        )
    with repos.db.session() as session:
        session.add_all(rows)
    ids: dict[str, int] = {}
    for n in range(12):
        symbol = "BTC/USDT" if n % 2 == 0 else "ETH/USDT"
        ts = START + (20 + n * 20) * STEP
        passed = n % 3 != 0
        trace = [
            FilterStep("volume", True, "volume above average"),
            FilterStep(
                "regime",
                passed,
                "trend up" if passed else "chop: no trade in a choppy market",
            ),
        ]
        signal = Signal(
            symbol,
            "5m",
            ts,
            Side.BUY,
            "ema_cross",
            0.7,
            60_000.0 if symbol == "BTC/USDT" else 3_000.0,
            "EMA 9 crossed above EMA 21",
            Regime.TREND_UP if passed else Regime.CHOP,
            {"ema_fast": 60_010.0, "ema_slow": 59_950.0, "rsi": 58.2},
        )
        signal_id = repos.signals.add(
            mode,
            signal,
            strategy="default",
            passed=passed,
            rejected_by=None if passed else "regime",
            confidence=0.55 + n * 0.03,
            trace=trace,
            created_at=ts,
        )
        ids[f"signal{n}"] = signal_id
        if not passed:
            continue
        action = "hold" if n == 4 else "buy"
        repos.advisor_calls.add(
            mode,
            symbol=symbol,
            timestamp=ts,
            signal_id=signal_id,
            model="gpt-4o-mini",
            prompt_version="v1",
            prompt="closed candles and indicators …",
            raw_answer=f'{{"action": "{action}"}}',
            parsed={"action": action, "confidence": 0.6 + n * 0.02, "reasoning": "trend intact"},
            valid=True,
            action=action,
            confidence=0.6 + n * 0.02,
            latency_ms=800,
            created_at=ts,
        )
        if action == "hold":
            continue
        approved = n != 8
        decision = RiskDecision(
            approved,
            "OK" if approved else "MAX_POSITIONS",
            "sized to 1 % risk" if approved else "3 positions already open",
            symbol,
            Side.BUY,
            ts,
        )
        risk_id = repos.risk_decisions.add(mode, decision, signal_id=signal_id, created_at=ts)
        if not approved:
            continue
        repos.orders.add(
            Order(
                mode,
                f"kmg-{mode.value}-{n}",
                symbol,
                Side.BUY,
                OrderType.MARKET,
                Decimal("0.01"),
                OrderStatus.FILLED,
                ts,
                filled=Decimal("0.01"),
                average_price=Decimal("60000"),
                fee=Decimal("0.6"),
                fee_currency="USDT",
            ),
            risk_decision_id=risk_id,
        )
    for n in range(5):
        opened = START + (30 + n * 40) * STEP
        pnl = Decimal("25.5") if n % 2 == 0 else Decimal("-12.25")
        position_id = repos.positions.open(
            Position(mode, "BTC/USDT", Decimal("0.01"), Decimal("60000"), opened)
        )
        repos.positions.close(
            mode,
            position_id,
            closed_at=opened + 10 * STEP,
            exit_price=Decimal("62550") if pnl > 0 else Decimal("58775"),
            exit_reason="take_profit" if pnl > 0 else "stop_loss",
            realized_pnl=pnl,
            fees_paid=Decimal("1.2"),
        )
    ids["open_position"] = repos.positions.open(
        Position(
            mode,
            "ETH/USDT",
            Decimal("0.5"),
            Decimal("3000"),
            START + 250 * STEP,
            stop_loss=Decimal("2900"),
            take_profit=Decimal("3200"),
        )
    )
    repos.balances.set_many(
        mode, {"USDT": (Decimal("8500"), Decimal("0")), "ETH": (Decimal("0.5"), Decimal("0"))}
    )
    repos.events.add(mode, "feed", "switched to REST polling", level="warning", source="collector")
    repos.events.add(mode, "exchange_error", "timeout talking to the exchange", level="error")
    repos.alerts.add(
        mode, event="trade_opened", title="Bought BTC/USDT", body="0.01 at 60000", status="sent"
    )
    return ids
