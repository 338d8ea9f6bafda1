"""What the decision pipeline needs from the stages it walks, as small protocols.

The pipeline never imports a concrete risk manager, advisor or exchange: the autopilot and the
backtester hand it objects that fit these shapes, so both run the very same code.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, Protocol

from kmg_autotrader.domain import (
    AdvisorDecision,
    Candidate,
    MarketInfo,
    OrderIntent,
    Position,
    RiskDecision,
)
from kmg_autotrader.execution.manager import ExecutionReport
from kmg_autotrader.signals.engine import Decision

#: How the advisor's answer is used: ``off`` (never asked), ``advisory`` (logged, may veto),
#: ``required`` (no valid answer, no trade), ``replay`` (recorded answers, by prompt hash).
AdvisorMode = Literal["off", "advisory", "required", "replay"]


class RiskGate(Protocol):
    """The risk manager: approves and sizes a candidate, or rejects it with a reason."""

    def evaluate(
        self, candidate: Candidate, portfolio_state: Any, market: MarketInfo
    ) -> RiskDecision:
        """Verdict on ``candidate``; an approval carries the sized :class:`OrderIntent`."""
        ...


class AdvisorStage(Protocol):
    """The LLM advisor (live, or replaying recorded answers) and how its answer is applied."""

    async def review(self, candidate: Candidate) -> AdvisorDecision:
        """A validated second opinion on ``candidate`` (or an abstention)."""
        ...

    def apply(
        self, candidate: Candidate, decision: AdvisorDecision, mode: AdvisorMode
    ) -> Candidate | None:
        """The candidate after the advice in ``mode`` (None: the advice vetoes the trade)."""
        ...


class PortfolioStateSource(Protocol):
    """Builds the portfolio state the risk manager judges against, as of ``now_ms``."""

    def __call__(self, now_ms: int) -> Any:
        """The current portfolio state (balances, open positions, equity, PnL so far)."""
        ...


class PositionReader(Protocol):
    """The part of the trading store the pipeline reads (open positions of a symbol)."""

    def open_positions(self, symbol: str | None = None) -> list[Position]:
        """Positions not closed yet."""
        ...


class Executor(Protocol):
    """The execution manager (paper or live): runs intents and exits positions."""

    @property
    def store(self) -> PositionReader:
        """Where the executor records positions."""
        ...

    async def execute(self, intent: OrderIntent) -> ExecutionReport:
        """Run one approved intent."""
        ...

    async def exit_position(
        self, position_id: int, reason: str, *, intended_price: Decimal | None = None
    ) -> ExecutionReport:
        """Close one position at market (claimed atomically first)."""
        ...


class DecisionRecorder(Protocol):
    """Where every stage's verdict is recorded (database live, memory or nothing in a backtest).

    ``record_signal`` returns the stored signal's id (or None) so later records can point at it.
    """

    def record_signal(self, decision: Decision) -> int | None:
        """The signal stage's decision (candidate or rejection, with its filter trace)."""
        ...

    def record_advice(
        self,
        candidate: Candidate,
        advice: AdvisorDecision,
        signal_id: int | None,
        *,
        vetoed: bool,
    ) -> None:
        """The advisor's answer (or abstention) for a candidate; ``vetoed``: it stopped it."""
        ...

    def record_risk(self, risk: RiskDecision, signal_id: int | None) -> int | None:
        """The risk verdict; returns its id (or None)."""
        ...

    def record_execution(
        self,
        report: ExecutionReport,
        signal_id: int | None,
        risk_decision_id: int | None = None,
    ) -> None:
        """What execution did with an intent (approved by ``risk_decision_id``) or an exit."""
        ...
