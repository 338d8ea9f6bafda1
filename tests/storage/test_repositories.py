"""Round-trip of every repository on SQLite and PostgreSQL, and PAPER/LIVE isolation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kmg_autotrader.domain import (
    Candidate,
    EquityPoint,
    Fill,
    FilterStep,
    Mode,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Position,
    Regime,
    RiskDecision,
    Side,
    Signal,
)
from kmg_autotrader.storage.repositories import Repositories

pytestmark = pytest.mark.db

T0 = 1_700_000_000_000


def _signal(symbol: str = "BTC/USDT") -> Signal:
    return Signal(
        symbol=symbol,
        timeframe="5m",
        timestamp=T0,
        side=Side.BUY,
        rule="sma_cross",
        strength=0.7,
        price=64210.5,
        reason="SMA20 crossed above SMA50 at 64,210; RSI 41",
        regime=Regime.TREND_UP,
        indicators={"sma20": 64210.1, "rsi": 41.0},
    )


def _order(mode: Mode, coid: str = "kmg-1") -> Order:
    return Order(
        mode=mode,
        client_order_id=coid,
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        amount=Decimal("0.00123"),
        status=OrderStatus.PENDING,
        created_at=T0,
        price=Decimal("64210.50"),
    )


def test_signal_round_trip_with_trace(repos: Repositories) -> None:
    candidate = Candidate(
        symbol="BTC/USDT",
        timeframe="5m",
        timestamp=T0,
        side=Side.BUY,
        price=64210.5,
        stop_loss=63000.0,
        take_profit=66000.0,
        confidence=0.66,
        expected_move=0.02,
        strategy="default",
        regime=Regime.TREND_UP,
        signals=(_signal(),),
        trace=(
            FilterStep("symbol", True, "BTC/USDT is configured"),
            FilterStep("fee_gate", False, "expected move 0.1% < fees 0.2%", {"fees": 0.002}),
        ),
    )
    sid = repos.signals.add_candidate(Mode.PAPER, candidate, passed=False, rejected_by="fee_gate")
    rows = repos.signals.recent(Mode.PAPER)
    assert rows[0]["id"] == sid
    assert rows[0]["trace"][1]["name"] == "fee_gate"
    assert rows[0]["trace"][1]["details"] == {"fees": 0.002}
    assert rows[0]["indicators"]["rsi"] == 41.0
    assert repos.signals.rejection_counts(Mode.PAPER) == {"fee_gate": 1}


def test_order_and_fill_round_trip_exact_decimals(repos: Repositories) -> None:
    repos.orders.add(_order(Mode.PAPER))
    with pytest.raises(ValueError, match="already exists"):
        repos.orders.add(_order(Mode.PAPER))
    repos.orders.update(Mode.PAPER, "kmg-1", status=OrderStatus.FILLED, filled=Decimal("0.00123"))
    stored = repos.orders.get(Mode.PAPER, "kmg-1")
    assert stored is not None
    assert stored.status is OrderStatus.FILLED
    assert stored.filled == Decimal("0.00123")
    assert stored.price == Decimal("64210.5")
    fill = Fill(
        mode=Mode.PAPER,
        client_order_id="kmg-1",
        symbol="BTC/USDT",
        side=Side.BUY,
        amount=Decimal("0.00123"),
        price=Decimal("64215.123456789012345678"),
        fee=Decimal("0.078984601851851852"),
        fee_currency="USDT",
        timestamp=T0 + 1,
        trade_id="t1",
    )
    assert repos.fills.add(fill) is True
    assert repos.fills.add(fill) is False  # a fill reported twice is stored once
    fills = repos.fills.for_order(Mode.PAPER, "kmg-1")
    assert fills == [fill]
    assert repos.orders.open_orders(Mode.PAPER) == []


def test_position_claim_exit_is_exclusive(repos: Repositories) -> None:
    pid = repos.positions.open(
        Position(
            mode=Mode.PAPER,
            symbol="BTC/USDT",
            amount=Decimal("0.5"),
            entry_price=Decimal("100"),
            opened_at=T0,
            stop_loss=Decimal("95"),
        )
    )
    assert repos.positions.claim_exit(Mode.PAPER, pid) is True
    assert repos.positions.claim_exit(Mode.PAPER, pid) is False
    repos.positions.release_exit(Mode.PAPER, pid)
    assert repos.positions.claim_exit(Mode.PAPER, pid) is True
    repos.positions.close(
        Mode.PAPER,
        pid,
        closed_at=T0 + 10,
        exit_price=Decimal("110"),
        exit_reason="take_profit",
        realized_pnl=Decimal("4.9"),
        fees_paid=Decimal("0.1"),
    )
    assert repos.positions.open_positions(Mode.PAPER) == []
    closed = repos.positions.closed_positions(Mode.PAPER)
    assert closed[0].realized_pnl == Decimal("4.9")
    assert repos.positions.claim_exit(Mode.PAPER, pid) is False  # closed: nothing to exit


def test_balances_equity_risk_state_and_params(repos: Repositories) -> None:
    repos.balances.set_many(Mode.PAPER, {"USDT": (Decimal("10000"), Decimal(0))})
    repos.balances.set_many(Mode.PAPER, {"USDT": (Decimal("9000.5"), Decimal("999.5"))})
    balance = repos.balances.get(Mode.PAPER, "USDT")
    assert balance is not None and balance.total == Decimal("10000.0")
    for i, value in enumerate(["10000", "10100", "9900"]):
        repos.equity.add(
            EquityPoint(Mode.PAPER, T0 + i, Decimal(value), Decimal(value), Decimal(0))
        )
    assert [p.equity for p in repos.equity.series(Mode.PAPER)] == [
        Decimal("10000"),
        Decimal("10100"),
        Decimal("9900"),
    ]
    assert repos.equity.peak(Mode.PAPER) == Decimal("10100")
    repos.risk_state.set(Mode.PAPER, "breaker", {"tripped": True, "at": T0})
    repos.risk_state.set(Mode.PAPER, "breaker", {"tripped": False})
    assert repos.risk_state.get(Mode.PAPER, "breaker") == {"tripped": False}
    assert repos.risk_params.add(Mode.PAPER, {"max_open_positions": 3}, source="test") == 1
    assert repos.risk_params.add(Mode.PAPER, {"max_open_positions": 4}, source="api") == 2
    latest = repos.risk_params.latest(Mode.PAPER)
    assert latest is not None and latest["params"] == {"max_open_positions": 4}
    assert latest["mode"] == "paper"


def test_risk_parameter_versions_count_per_mode(repos: Repositories) -> None:
    assert repos.risk_params.latest(Mode.LIVE) is None
    repos.risk_params.add(Mode.PAPER, {"max_open_positions": 3}, source="web:token")
    repos.risk_params.add(Mode.PAPER, {"max_open_positions": 4}, source="web:token")
    assert repos.risk_params.add(Mode.LIVE, {"max_open_positions": 1}, source="web:session") == 1
    assert repos.risk_params.latest(Mode.LIVE)["params"] == {"max_open_positions": 1}
    assert repos.risk_params.latest(Mode.PAPER)["params"] == {"max_open_positions": 4}
    assert [r["version"] for r in repos.risk_params.history(Mode.PAPER)] == [2, 1]
    assert [r["mode"] for r in repos.risk_params.history(Mode.LIVE)] == ["live"]


def test_risk_decisions_advisor_calls_alerts_events_chat_ml(repos: Repositories) -> None:
    intent = OrderIntent(
        mode=Mode.PAPER,
        symbol="BTC/USDT",
        side=Side.BUY,
        amount=Decimal("0.01"),
        price=Decimal("64000"),
        stop_loss=Decimal("63000"),
        take_profit=None,
        created_at=T0,
    )
    approved = RiskDecision(True, "APPROVED", "ok", "BTC/USDT", Side.BUY, T0, intent=intent)
    rejected = RiskDecision(False, "MAX_POSITIONS", "3 of 3 open", "ETH/USDT", Side.BUY, T0)
    repos.risk_decisions.add(Mode.PAPER, approved, params_version=1)
    repos.risk_decisions.add(Mode.PAPER, rejected)
    rows = repos.risk_decisions.recent(Mode.PAPER)
    assert {r["reason_code"] for r in rows} == {"APPROVED", "MAX_POSITIONS"}
    assert repos.risk_decisions.rejection_counts(Mode.PAPER) == {"MAX_POSITIONS": 1}
    assert next(r for r in rows if r["approved"])["amount"] == Decimal("0.01")

    call_id = repos.advisor_calls.add(
        Mode.PAPER,
        symbol="BTC/USDT",
        prompt="p",
        prompt_hash="abc",
        prompt_version="v1",
        raw_answer='{"action": "buy"}',
        parsed={"action": "buy", "confidence": 0.7},
        valid=True,
        errors=[],
        created_at=T0,
    )
    assert repos.advisor_calls.find_by_prompt_hash("abc")["id"] == call_id  # type: ignore[index]
    assert repos.advisor_calls.count_since(T0 - 1) == 1
    assert repos.advisor_calls.last_for_symbol("BTC/USDT") is not None

    alert_id = repos.alerts.add(
        Mode.PAPER, event="order_filled", title="t", body="b", status="queued"
    )
    repos.alerts.set_status(alert_id, "sent", sent_at=T0)
    assert repos.alerts.recent(Mode.PAPER)[0]["status"] == "sent"
    repos.events.add(Mode.PAPER, "feed_switch", "websocket -> rest", level="warning")
    assert repos.events.recent(Mode.PAPER, kind="feed_switch")[0]["level"] == "warning"
    repos.chat.add("user", "how are we doing?")
    repos.chat.add("assistant", "fine")
    assert [m["role"] for m in repos.chat.recent()] == ["user", "assistant"]
    repos.ml_models.add(name="lgbm", version="1", path="/x", trained_at=T0, metrics={"auc": 0.6})
    assert repos.ml_models.latest()["metrics"] == {"auc": 0.6}  # type: ignore[index]


def test_paper_rows_are_invisible_to_live_queries_and_vice_versa(repos: Repositories) -> None:
    repos.orders.add(_order(Mode.PAPER, "paper-1"))
    repos.orders.add(_order(Mode.LIVE, "live-1"))
    repos.signals.add(Mode.PAPER, _signal())
    repos.positions.open(
        Position(Mode.LIVE, "BTC/USDT", Decimal("1"), Decimal("100"), opened_at=T0)
    )
    repos.balances.set_many(Mode.PAPER, {"USDT": (Decimal("10000"), Decimal(0))})
    repos.equity.add(EquityPoint(Mode.LIVE, T0, Decimal(5), Decimal(5), Decimal(0)))

    assert [o.client_order_id for o in repos.orders.open_orders(Mode.PAPER)] == ["paper-1"]
    assert [o.client_order_id for o in repos.orders.open_orders(Mode.LIVE)] == ["live-1"]
    assert repos.orders.get(Mode.LIVE, "paper-1") is None
    assert repos.orders.get(Mode.PAPER, "live-1") is None
    assert repos.signals.recent(Mode.LIVE) == []
    assert repos.positions.open_positions(Mode.PAPER) == []
    assert len(repos.positions.open_positions(Mode.LIVE)) == 1
    assert repos.balances.all(Mode.LIVE) == []
    assert repos.equity.series(Mode.PAPER) == []
    with pytest.raises(KeyError):
        repos.orders.update(Mode.LIVE, "paper-1", status=OrderStatus.CANCELED)


def test_pagination_limits(repos: Repositories) -> None:
    for i in range(5):
        repos.events.add(Mode.PAPER, "k", f"m{i}", created_at=T0 + i)
    page = repos.events.recent(Mode.PAPER, limit=2, offset=1)
    assert [e["message"] for e in page] == ["m3", "m2"]
    with pytest.raises(ValueError):
        repos.events.recent(Mode.PAPER, limit=0)


def test_migrations_are_at_head(repos: Repositories) -> None:
    head = repos.db.head()
    assert head is not None and repos.db.current() == head
    repos.db.upgrade()  # idempotent
    assert repos.db.current() == head


def test_orders_of_an_intent_link_to_their_risk_decision(repos: Repositories) -> None:
    from dataclasses import replace

    intent = OrderIntent(
        mode=Mode.PAPER,
        symbol="BTC/USDT",
        side=Side.BUY,
        amount=Decimal("0.01"),
        price=Decimal("64000"),
        stop_loss=None,
        take_profit=None,
        created_at=T0,
    )
    approved = RiskDecision(True, "APPROVED", "ok", "BTC/USDT", Side.BUY, T0, intent=intent)
    risk_id = repos.risk_decisions.add(Mode.PAPER, approved)
    repos.orders.add(replace(_order(Mode.PAPER, "kmg-a"), intent_id="i-1"))
    repos.orders.add(replace(_order(Mode.PAPER, "kmg-b"), intent_id="i-2"))
    repos.orders.add(replace(_order(Mode.LIVE, "kmg-c"), intent_id="i-1"))
    assert repos.orders.link_risk_decision(Mode.PAPER, "i-1", risk_id) == 1
    assert repos.orders.link_risk_decision(Mode.PAPER, "i-1", risk_id + 1) == 0  # kept
    from sqlalchemy import select

    from kmg_autotrader.storage.models import OrderRow

    with repos.db.session() as session:
        query = select(OrderRow.client_order_id, OrderRow.risk_decision_id)
        links = {coid: rid for coid, rid in session.execute(query)}
    assert links == {"kmg-a": risk_id, "kmg-b": None, "kmg-c": None}
