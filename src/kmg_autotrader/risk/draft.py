"""A decision being made: the figures and clamps gathered on the way, then approve or reject."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from kmg_autotrader.domain import Candidate, OrderIntent, RiskDecision
from kmg_autotrader.risk.reasons import ReasonCode
from kmg_autotrader.risk.rules import Rejection

_UNSET: Any = object()
_APPROVED = ReasonCode.APPROVED.value


def check_field_order(cls: type, names: tuple[str, ...]) -> None:
    """Raise ``TypeError`` unless the dataclass ``cls`` has exactly the fields ``names``, in order.

    The hot path builds its records positionally (a keyword call to a class builds a dict of
    the arguments first); a field added, removed or moved must fail at import, not shift a value.
    """
    fields = tuple(f.name for f in dataclasses.fields(cls))
    if fields != names:
        raise TypeError(f"{cls.__name__} has the fields {fields}, expected {names}")


check_field_order(
    RiskDecision,
    (
        "approved",
        "reason_code",
        "message",
        "symbol",
        "side",
        "timestamp",
        "intent",
        "adjustments",
        "checks",
    ),
)
check_field_order(
    OrderIntent,
    (
        "mode",
        "symbol",
        "side",
        "amount",
        "price",
        "stop_loss",
        "take_profit",
        "created_at",
        "reason",
        "signal_id",
        "risk_decision_id",
    ),
)


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
        """The final "no", with its reason (positional, in field order: checked above)."""
        candidate = self.candidate
        return RiskDecision(
            False,
            rejection.code.value,
            rejection.message,
            candidate.symbol,
            candidate.side,
            self.now_ms,
            None,
            tuple(self.adjustments),
            self.checks,
        )

    def approve(self, intent: OrderIntent, message: str) -> RiskDecision:
        """The final "yes", carrying the sized intent (positional, in field order)."""
        candidate = self.candidate
        return RiskDecision(
            True,
            _APPROVED,
            message,
            candidate.symbol,
            candidate.side,
            self.now_ms,
            intent,
            tuple(self.adjustments),
            self.checks,
        )
