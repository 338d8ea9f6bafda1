"""The decision pipeline's walk: record → advisor → risk → execution; exits bypass the gates."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest

from kmg_autotrader.domain import (
    AdvisorAction,
    AdvisorDecision,
    Candidate,
    MarketInfo,
    Mode,
    OrderIntent,
    Position,
    Regime,
    RiskDecision,
    Side,
)
from kmg_autotrader.execution.manager import ExecutionReport
from kmg_autotrader.pipeline import CountingRecorder, DecisionPipeline, PositionFeedback
from kmg_autotrader.signals.engine import Decision

MARKET = MarketInfo("BTC/USDT", "BTC", "USDT", Decimal("0.00001"), Decimal("0.01"))
T = 1_700_000_100_000


def candidate(side: Side = Side.BUY) -> Candidate:
    return Candidate(
        symbol="BTC/USDT",
        timeframe="5m",
        timestamp=T - 300_000,
        side=side,
        price=100.0,
        stop_loss=95.0 if side is Side.BUY else None,
        take_profit=110.0 if side is Side.BUY else None,
        confidence=0.8,
        expected_move=0.05,
        strategy="test",
        regime=Regime.TREND_UP,
    )


def decision(**kw: Any) -> Decision:
    return Decision("BTC/USDT", "5m", T - 300_000, T, Regime.TREND_UP, **kw)


@dataclass
class FakeRisk:
    approve: bool = True
    seen: list[tuple[Candidate, Any]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def evaluate(self, c: Candidate, portfolio_state: Any, market: MarketInfo) -> RiskDecision:
        self.seen.append((c, portfolio_state))
        intent = OrderIntent(
            Mode.PAPER, c.symbol, c.side, Decimal(1), Decimal("100"), None, None, T
        )
        return RiskDecision(
            self.approve,
            "APPROVED" if self.approve else "MAX_POSITIONS",
            "",
            c.symbol,
            c.side,
            T,
            intent=intent if self.approve else None,
        )

    def record_entry(self, symbol: str, at_ms: int) -> None: ...
    def record_trade_closed(self, symbol: str, pnl: Decimal, at_ms: int) -> None: ...
    def update_equity(self, equity: Decimal, at_ms: int) -> None: ...

    def cancel_entry(self, symbol: str) -> None:
        self.cancelled.append(symbol)


@dataclass
class FakeStore:
    positions: list[Position] = field(default_factory=list)

    def open_positions(self, symbol: str | None = None) -> list[Position]:
        return [p for p in self.positions if symbol in (None, p.symbol) and p.closed_at is None]

    def get_position(self, position_id: int) -> Position | None:
        return next((p for p in self.positions if p.id == position_id), None)


@dataclass
class FakeExecutor:
    store: FakeStore = field(default_factory=FakeStore)
    intents: list[OrderIntent] = field(default_factory=list)
    exits: list[tuple[int, str, Decimal | None]] = field(default_factory=list)
    status: str = "working"

    async def execute(self, intent: OrderIntent) -> ExecutionReport:
        self.intents.append(intent)
        return ExecutionReport(self.status, intent_id="i1", position_id=7)

    async def exit_position(
        self, position_id: int, reason: str, *, intended_price: Decimal | None = None
    ) -> ExecutionReport:
        self.exits.append((position_id, reason, intended_price))
        return ExecutionReport("working", position_id=position_id)


@dataclass
class FakeAdvisor:
    action: AdvisorAction = AdvisorAction.BUY
    calls: int = 0

    async def review(self, c: Candidate) -> AdvisorDecision:
        self.calls += 1
        return AdvisorDecision(True, self.action, 0.6)

    def apply(self, c: Candidate, d: AdvisorDecision, mode: str) -> Candidate | None:
        if d.action is not AdvisorAction.BUY:
            return None
        return replace(c, confidence=min(c.confidence, d.confidence or 1))


def pipeline(**kw: Any) -> tuple[DecisionPipeline, FakeRisk, FakeExecutor]:
    risk = kw.pop("risk", FakeRisk())
    executor = kw.pop("executor", FakeExecutor())
    return DecisionPipeline(risk, executor, lambda now: {"now": now}, **kw), risk, executor


async def test_entry_walks_every_stage_in_order() -> None:
    recorder = CountingRecorder()
    advisor = FakeAdvisor()
    p, risk, executor = pipeline(advisor=advisor, advisor_mode="advisory", recorder=recorder)
    outcome = await p.process(decision(candidate=candidate()), market=MARKET, now_ms=T)
    assert outcome.stage == "executed"
    assert advisor.calls == 1
    ((seen, state),) = risk.seen
    assert seen.confidence == 0.6  # the advisor's adjustment reached the risk gate
    assert state == {"now": T}  # the portfolio state is built at the clock's time
    assert executor.intents[0].side is Side.BUY
    assert recorder.signals == 1 and recorder.approvals == 1
    assert recorder.executions["working"] == 1


async def test_advisor_veto_stops_before_risk() -> None:
    recorder = CountingRecorder()
    p, risk, executor = pipeline(
        advisor=FakeAdvisor(AdvisorAction.HOLD), advisor_mode="required", recorder=recorder
    )
    outcome = await p.process(decision(candidate=candidate()), market=MARKET, now_ms=T)
    assert outcome.stage == "advisor" and not risk.seen and not executor.intents
    assert recorder.advisor_vetoes == 1


async def test_advisor_off_is_never_asked() -> None:
    advisor = FakeAdvisor(AdvisorAction.HOLD)
    p, _, executor = pipeline(advisor=advisor, advisor_mode="off")
    await p.process(decision(candidate=candidate()), market=MARKET, now_ms=T)
    assert advisor.calls == 0 and executor.intents


async def test_risk_rejection_sends_nothing() -> None:
    recorder = CountingRecorder()
    p, _, executor = pipeline(risk=FakeRisk(approve=False), recorder=recorder)
    outcome = await p.process(decision(candidate=candidate()), market=MARKET, now_ms=T)
    assert outcome.stage == "risk" and outcome.risk is not None
    assert not executor.intents
    assert recorder.rejections["MAX_POSITIONS"] == 1


async def test_exit_closes_open_positions_without_the_gates() -> None:
    position = Position(Mode.PAPER, "BTC/USDT", Decimal(1), Decimal(90), T - 10**6, id=3)
    executor = FakeExecutor(FakeStore([position]))
    risk = FakeRisk(approve=False)
    p, _, _ = pipeline(risk=risk, executor=executor)
    outcome = await p.process(decision(exit=candidate(Side.SELL)), market=MARKET, now_ms=T)
    assert outcome.stage == "exit"
    assert executor.exits == [(3, "signal", Decimal("100.0"))]
    assert not risk.seen


async def test_exit_without_position_does_nothing() -> None:
    p, _, executor = pipeline()
    outcome = await p.process(decision(exit=candidate(Side.SELL)), market=MARKET, now_ms=T)
    assert outcome.stage == "no_position" and not executor.exits


async def test_empty_or_rejected_decisions_stop_early() -> None:
    p, risk, _ = pipeline()
    assert (await p.process(decision(), market=MARKET, now_ms=T)).stage == "nothing"
    rejected = decision(rejected_by="fee_gate", entry_signals=())
    assert (await p.process(rejected, market=MARKET, now_ms=T)).stage == "nothing"
    assert not risk.seen


async def test_no_decision_before_its_candle_closed() -> None:
    p, _, _ = pipeline()
    with pytest.raises(ValueError):
        await p.process(decision(candidate=candidate()), market=MARKET, now_ms=T - 1)


def test_advisor_mode_needs_an_advisor() -> None:
    with pytest.raises(ValueError):
        pipeline(advisor_mode="required")


async def test_refused_entry_frees_the_risk_slot() -> None:
    risk = FakeRisk()
    store = FakeStore()
    feedback = PositionFeedback(risk, store)
    p, _, _ = pipeline(
        risk=risk, executor=FakeExecutor(store, status="rejected"), feedback=feedback
    )
    await p.process(decision(candidate=candidate()), market=MARKET, now_ms=T)
    assert risk.cancelled == ["BTC/USDT"]
