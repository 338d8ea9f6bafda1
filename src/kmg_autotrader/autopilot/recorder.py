"""The live decision recorder: every stage's verdict goes to the database and the data vault.

The dashboard, alerts, chat and ML trainer read these records; none of them recompute a
decision. Vault writes never raise (a full disk must not stop trading).
"""

from __future__ import annotations

from typing import Any

from kmg_autotrader.domain import AdvisorDecision, Candidate, Mode, RiskDecision
from kmg_autotrader.execution.manager import ExecutionReport
from kmg_autotrader.signals.engine import Decision
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.vault import VaultKind, VaultWriter


class DatabaseRecorder:
    """Stores signals (with their filter trace), risk verdicts and execution outcomes.

    Advisor calls are stored by the advisor's own audit log; here only the veto is noted.
    ``on_risk`` / ``on_execution`` let the bot raise alerts from the same verdicts.
    """

    def __init__(
        self,
        repos: Repositories,
        mode: Mode,
        *,
        vault: VaultWriter | None = None,
        params_version: Any = None,
    ) -> None:
        self.repos = repos
        self.mode = mode
        self.vault = vault
        self._params_version = params_version

    def _vault(self, record: dict[str, Any], ts: int) -> None:
        if self.vault is not None:
            self.vault.try_append(VaultKind.DECISIONS, record, ts_ms=ts)

    def record_signal(self, decision: Decision) -> int | None:
        """Store the candidate, the rejected entry or the exit signal of one candle."""
        if decision.candidate is not None:
            signal_id = self.repos.signals.add_candidate(
                self.mode, decision.candidate, passed=True, rejected_by=None
            )
        elif decision.exit is not None:
            signal_id = self.repos.signals.add_candidate(
                self.mode, decision.exit, passed=True, rejected_by=None
            )
        elif decision.entry_signals:
            first = decision.entry_signals[0]
            signal_id = self.repos.signals.add(
                self.mode,
                first,
                strategy="",
                passed=False,
                rejected_by=decision.rejected_by,
                trace=decision.trace,
            )
        else:
            return None
        self._vault(
            {
                "stage": "signal",
                "signal_id": signal_id,
                "symbol": decision.symbol,
                "candle": decision.timestamp,
                "regime": decision.regime.value,
                "candidate": decision.candidate is not None,
                "exit": decision.exit is not None,
                "rejected_by": decision.rejected_by,
                "trace": [
                    {"name": s.name, "passed": s.passed, "reason": s.reason} for s in decision.trace
                ],
            },
            decision.decided_at,
        )
        return signal_id

    def record_advice(
        self,
        candidate: Candidate,
        advice: AdvisorDecision,
        signal_id: int | None,
        *,
        vetoed: bool,
    ) -> None:
        """Note the advisor's verdict in the vault (the call itself is in ``advisor_calls``)."""
        self._vault(
            {
                "stage": "advisor",
                "signal_id": signal_id,
                "symbol": candidate.symbol,
                "valid": advice.valid,
                "action": advice.action.value if advice.action else None,
                "confidence": advice.confidence,
                "fallback": advice.fallback,
                "vetoed": vetoed,
                "call_id": advice.call_id,
            },
            candidate.timestamp,
        )

    def record_risk(self, risk: RiskDecision, signal_id: int | None) -> int | None:
        """Store the approval or rejection (with reason code, clamps and figures)."""
        version = risk.checks.get("params_version") if isinstance(risk.checks, dict) else None
        risk_id = self.repos.risk_decisions.add(
            self.mode,
            risk,
            signal_id=signal_id,
            params_version=version if isinstance(version, int) else None,
            created_at=risk.timestamp,
        )
        self._vault(
            {
                "stage": "risk",
                "signal_id": signal_id,
                "risk_decision_id": risk_id,
                "symbol": risk.symbol,
                "approved": risk.approved,
                "reason_code": risk.reason_code,
                "message": risk.message,
                "adjustments": list(risk.adjustments),
            },
            risk.timestamp,
        )
        return risk_id

    def record_execution(
        self,
        report: ExecutionReport,
        signal_id: int | None,
        risk_decision_id: int | None = None,
    ) -> None:
        """Orders and fills are stored by the execution store; link them to the risk decision
        that approved them (the dashboard's signal flow and the ML trainer follow that link)
        and note problems as events."""
        if risk_decision_id is not None and report.intent_id:
            self.repos.orders.link_risk_decision(self.mode, report.intent_id, risk_decision_id)
        if report.status in {"rejected", "unresolved", "blocked"}:
            self.repos.events.add(
                self.mode,
                f"execution_{report.status}",
                report.message or report.status,
                level="warning",
                source="execution",
                details={"signal_id": signal_id, "intent_id": report.intent_id},
            )
