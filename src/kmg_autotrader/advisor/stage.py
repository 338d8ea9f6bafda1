"""Adapter to the decision pipeline's ``AdvisorStage`` shape (``review(candidate)`` and
``apply(candidate, decision, mode)``), for the autopilot and the backtester to wire in."""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger

from kmg_autotrader.advisor.apply import apply_advice
from kmg_autotrader.advisor.context import AdvisorContext
from kmg_autotrader.advisor.service import Advisor
from kmg_autotrader.domain import AdvisorDecision, Candidate

ContextSource = Callable[[Candidate], AdvisorContext]


class AdvisorPipelineStage:
    """An :class:`Advisor` plus a function that builds the context for a candidate."""

    def __init__(self, advisor: Advisor, context_source: ContextSource | None = None) -> None:
        self.advisor = advisor
        self._context_source = context_source or (lambda _candidate: AdvisorContext())

    async def review(self, candidate: Candidate) -> AdvisorDecision:
        """The advisor's decision on ``candidate`` in the context built for it."""
        return await self.advisor.review(candidate, self._context_source(candidate))

    def apply(self, candidate: Candidate, decision: AdvisorDecision, mode: str) -> Candidate | None:
        """``apply_advice`` in ``mode``; an advisor without an endpoint counts as ``off``."""
        effective = "off" if self.advisor.mode == "off" else mode
        adjusted, reason = apply_advice(candidate, decision, effective)
        logger.info("advisor on {} {}: {}", candidate.side.value, candidate.symbol, reason)
        return adjusted
