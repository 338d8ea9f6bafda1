"""Decision recorders that need no database: nothing at all, or counts and rows in memory."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from kmg_autotrader.domain import AdvisorDecision, Candidate, RiskDecision
from kmg_autotrader.execution.manager import ExecutionReport
from kmg_autotrader.signals.engine import Decision


class NullRecorder:
    """Records nothing (fastest backtests)."""

    def record_signal(self, decision: Decision) -> int | None:
        """Ignored."""
        return None

    def record_advice(
        self,
        candidate: Candidate,
        advice: AdvisorDecision,
        signal_id: int | None,
        *,
        vetoed: bool,
    ) -> None:
        """Ignored."""

    def record_risk(self, risk: RiskDecision, signal_id: int | None) -> int | None:
        """Ignored."""
        return None

    def record_execution(
        self,
        report: ExecutionReport,
        signal_id: int | None,
        risk_decision_id: int | None = None,
    ) -> None:
        """Ignored."""


@dataclass(slots=True)
class CountingRecorder:
    """Counts verdicts (backtest summary: why candidates were rejected) and, when ``keep`` is
    True, keeps every risk decision and execution report in memory."""

    keep: bool = False
    signals: int = 0
    candidates: int = 0
    exits: int = 0
    advisor_vetoes: int = 0
    approvals: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    executions: Counter[str] = field(default_factory=Counter)
    risk_decisions: list[RiskDecision] = field(default_factory=list)
    reports: list[ExecutionReport] = field(default_factory=list)

    def record_signal(self, decision: Decision) -> int | None:
        """Count the decision; returns a running id."""
        self.signals += 1
        self.candidates += decision.candidate is not None
        self.exits += decision.exit is not None
        return self.signals

    def record_advice(
        self,
        candidate: Candidate,
        advice: AdvisorDecision,
        signal_id: int | None,
        *,
        vetoed: bool,
    ) -> None:
        """Count vetoes."""
        self.advisor_vetoes += vetoed

    def record_risk(self, risk: RiskDecision, signal_id: int | None) -> int | None:
        """Count the approval or the rejection reason."""
        if risk.approved:
            self.approvals += 1
        else:
            self.rejections[risk.reason_code] += 1
        if self.keep:
            self.risk_decisions.append(risk)
        return None

    def record_execution(
        self,
        report: ExecutionReport,
        signal_id: int | None,
        risk_decision_id: int | None = None,
    ) -> None:
        """Count the execution status."""
        self.executions[report.status] += 1
        if self.keep:
            self.reports.append(report)
