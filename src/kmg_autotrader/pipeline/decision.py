"""The one decision path, shared by the live autopilot and the backtester.

``signals Decision → record → advisor → risk → execution`` for an entry candidate, and
``signals Decision → record → exit every open position of the symbol`` for an exit signal.
Exits do not go through the advisor or the risk gate: like the mental stop-loss and
take-profit they only ever reduce exposure, and a kill switch must never keep a position open.

Nothing here knows whether it runs live or on simulated time: the clock, the exchange and the
stores live in the objects it is handed. A backtest is fast because it calls :meth:`process`
only on candles where something can happen, never because this path is shortened.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from loguru import logger

from kmg_autotrader.domain import AdvisorDecision, Candidate, MarketInfo, RiskDecision
from kmg_autotrader.execution.manager import ExecutionReport
from kmg_autotrader.pipeline.feedback import PositionFeedback
from kmg_autotrader.pipeline.ports import (
    AdvisorMode,
    AdvisorStage,
    DecisionRecorder,
    Executor,
    PortfolioStateSource,
    RiskGate,
)
from kmg_autotrader.pipeline.recorder import NullRecorder
from kmg_autotrader.signals.engine import Decision


@dataclass(frozen=True, slots=True)
class PipelineOutcome:
    """Everything one decision led to.

    ``candidate`` is the entry as it reached the risk gate (after the advisor);
    ``stage`` names where the walk stopped: ``nothing`` | ``advisor`` | ``risk`` | ``executed``
    for an entry, ``exit`` when an exit signal was acted on, ``no_position`` when it was not.
    """

    decision: Decision
    stage: str
    candidate: Candidate | None = None
    advice: AdvisorDecision | None = None
    risk: RiskDecision | None = None
    execution: ExecutionReport | None = None
    exits: tuple[ExecutionReport, ...] = ()
    signal_id: int | None = None

    @property
    def orders(self) -> tuple[object, ...]:
        """Every order sent for this decision (entry and exits)."""
        out: list[object] = []
        if self.execution is not None:
            out.extend(self.execution.orders)
        for report in self.exits:
            out.extend(report.orders)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An entry candidate between its signal and the risk gate: ``candidate`` as the advisor
    left it (``advice`` once reviewed), ``signal_id`` of its recorded signal."""

    decision: Decision
    candidate: Candidate
    signal_id: int | None
    advice: AdvisorDecision | None = None


class DecisionPipeline:
    """Walks one signals :class:`~kmg_autotrader.signals.engine.Decision` through the stages.

    ``risk``: the risk manager; ``executor``: the execution manager (paper or live);
    ``portfolio``: builds the portfolio state the risk manager judges against (called only when
    there is a candidate); ``advisor`` and ``advisor_mode``: the LLM second opinion (``off``
    skips it); ``recorder``: where verdicts are stored (nothing by default).
    """

    def __init__(
        self,
        risk: RiskGate,
        executor: Executor,
        portfolio: PortfolioStateSource,
        *,
        advisor: AdvisorStage | None = None,
        advisor_mode: AdvisorMode = "off",
        recorder: DecisionRecorder | None = None,
        feedback: PositionFeedback | None = None,
    ) -> None:
        if advisor_mode != "off" and advisor is None:
            raise ValueError(f"advisor mode {advisor_mode!r} needs an advisor")
        self.risk = risk
        self.executor = executor
        self.portfolio = portfolio
        self.advisor = advisor
        self.advisor_mode: AdvisorMode = advisor_mode
        self.recorder: DecisionRecorder = recorder or NullRecorder()
        self.feedback = feedback

    @property
    def reviews(self) -> bool:
        """True when entry candidates go to the advisor (the one slow, networked stage)."""
        return self.advisor is not None and self.advisor_mode != "off"

    async def process(
        self, decision: Decision, *, market: MarketInfo, now_ms: int
    ) -> PipelineOutcome:
        """Act on ``decision`` for ``market`` at ``now_ms`` (the clock's time, at or after
        ``decision.decided_at``). Returns what each stage decided.

        The three steps in one go (the backtester's way); the live bot calls :meth:`begin`,
        :meth:`review` and :meth:`finish` itself so that the advisor runs outside its lock.
        """
        staged = await self.begin(decision, now_ms=now_ms)
        if isinstance(staged, PipelineOutcome):
            return staged
        reviewed = await self.review(staged)
        if isinstance(reviewed, PipelineOutcome):
            return reviewed
        return await self.finish(reviewed, market=market, now_ms=now_ms)

    async def begin(self, decision: Decision, *, now_ms: int) -> PipelineOutcome | PendingEntry:
        """Record the signal and act on an exit; an entry candidate comes back as a
        :class:`PendingEntry` for :meth:`review` and :meth:`finish`."""
        if now_ms < decision.decided_at:
            raise ValueError(
                f"{decision.symbol}: decision of {decision.decided_at} processed at {now_ms}"
            )
        if decision.is_empty:
            return PipelineOutcome(decision, "nothing")
        signal_id = self.recorder.record_signal(decision)
        if decision.exit is not None:
            return await self._exit(decision, signal_id)
        if decision.candidate is None:  # an entry the filters rejected: recorded, nothing else
            return PipelineOutcome(decision, "nothing", signal_id=signal_id)
        return PendingEntry(decision, decision.candidate, signal_id)

    async def review(self, pending: PendingEntry) -> PipelineOutcome | PendingEntry:
        """The advisor's review (nothing to do when it is off): the candidate as advised, or the
        outcome of a veto. Reads no trading state: it may run while other work goes on."""
        if self.advisor is None or self.advisor_mode == "off":
            return pending
        candidate = pending.candidate
        advice = await self.advisor.review(candidate)
        advised = self.advisor.apply(candidate, advice, self.advisor_mode)
        self.recorder.record_advice(candidate, advice, pending.signal_id, vetoed=advised is None)
        if advised is None:
            logger.info("pipeline: {} candidate vetoed by the advisor", candidate.symbol)
            return PipelineOutcome(
                pending.decision, "advisor", candidate, advice, signal_id=pending.signal_id
            )
        return replace(pending, candidate=advised, advice=advice)

    async def finish(
        self, pending: PendingEntry, *, market: MarketInfo, now_ms: int
    ) -> PipelineOutcome:
        """The risk gate on the state as of now, then execution of what it approves."""
        decision, candidate, advice, signal_id = (
            pending.decision,
            pending.candidate,
            pending.advice,
            pending.signal_id,
        )
        risk = self.risk.evaluate(candidate, self.portfolio(now_ms), market)
        risk_id = self.recorder.record_risk(risk, signal_id)
        if not risk.approved or risk.intent is None:
            logger.debug("pipeline: {} rejected by risk: {}", candidate.symbol, risk.reason_code)
            return PipelineOutcome(decision, "risk", candidate, advice, risk, signal_id=signal_id)
        report = await self.executor.execute(risk.intent)
        self.recorder.record_execution(report, signal_id, risk_id)
        if self.feedback is not None:
            self.feedback.entry_sent(candidate.symbol, report.position_id, report.status)
        return PipelineOutcome(
            decision, "executed", candidate, advice, risk, report, signal_id=signal_id
        )

    def reject(self, pending: PendingEntry, reason_code: str, message: str) -> PipelineOutcome:
        """Drop ``pending`` before the risk gate (the world changed while the advisor thought):
        recorded as a rejection with ``reason_code``, like the risk gate's own."""
        candidate = pending.candidate
        risk = RiskDecision(
            approved=False,
            reason_code=reason_code,
            message=message,
            symbol=candidate.symbol,
            side=candidate.side,
            timestamp=candidate.timestamp,
        )
        self.recorder.record_risk(risk, pending.signal_id)
        logger.info("pipeline: {} candidate dropped: {}", candidate.symbol, message)
        return PipelineOutcome(
            pending.decision,
            "risk",
            candidate,
            pending.advice,
            risk,
            signal_id=pending.signal_id,
        )

    async def _exit(self, decision: Decision, signal_id: int | None) -> PipelineOutcome:
        exit_candidate = decision.exit
        assert exit_candidate is not None
        positions = self.executor.store.open_positions(decision.symbol)
        if not positions:
            return PipelineOutcome(decision, "no_position", signal_id=signal_id)
        price = Decimal(str(exit_candidate.price))
        reports: list[ExecutionReport] = []
        for position in positions:
            if position.id is None:
                continue
            report = await self.executor.exit_position(position.id, "signal", intended_price=price)
            self.recorder.record_execution(report, signal_id)
            reports.append(report)
        return PipelineOutcome(decision, "exit", exits=tuple(reports), signal_id=signal_id)
