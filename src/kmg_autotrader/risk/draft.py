"""A decision being made: the figures and clamps gathered on the way, then approve or reject."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kmg_autotrader.domain import Candidate, OrderIntent, RiskDecision
from kmg_autotrader.risk.reasons import ReasonCode
from kmg_autotrader.risk.rules import Rejection

_UNSET: Any = object()
_APPROVED = ReasonCode.APPROVED.value


def to_decimal(value: Decimal | float) -> Decimal:
    """A float input as the Decimal it prints as (no binary-fraction noise)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


class DecisionDraft:
    """Collects ``checks`` (the computed figures) and ``adjustments`` (every clamp applied)."""

    __slots__ = ("_price", "_stop_loss", "adjustments", "candidate", "checks", "now_ms")

    def __init__(self, candidate: Candidate, now_ms: int) -> None:
        self.candidate = candidate
        self.now_ms = now_ms
        self.checks: dict[str, Any] = {}
        self.adjustments: list[str] = []
        self._price: Decimal | None = None
        self._stop_loss: Decimal | None = _UNSET

    @property
    def price(self) -> Decimal:
        """The candidate's price as a Decimal (converted once: sizing and the intent use it)."""
        price = self._price
        if price is None:
            price = self._price = to_decimal(self.candidate.price)
        return price

    @property
    def stop_loss(self) -> Decimal | None:
        """The candidate's stop-loss as a Decimal, None when it has none (converted once)."""
        stop = self._stop_loss
        if stop is _UNSET:
            value = self.candidate.stop_loss
            stop = self._stop_loss = None if value is None else to_decimal(value)
        return stop

    def reject(self, rejection: Rejection) -> RiskDecision:
        """The final "no", with its reason."""
        return RiskDecision(
            approved=False,
            reason_code=rejection.code.value,
            message=rejection.message,
            symbol=self.candidate.symbol,
            side=self.candidate.side,
            timestamp=self.now_ms,
            adjustments=tuple(self.adjustments),
            checks=self.checks,
        )

    def approve(self, intent: OrderIntent, message: str) -> RiskDecision:
        """The final "yes", carrying the sized intent."""
        return RiskDecision(
            approved=True,
            reason_code=_APPROVED,
            message=message,
            symbol=self.candidate.symbol,
            side=self.candidate.side,
            timestamp=self.now_ms,
            intent=intent,
            adjustments=tuple(self.adjustments),
            checks=self.checks,
        )
