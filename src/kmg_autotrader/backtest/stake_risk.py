"""Fixed-stake entries (``--stake-amount``) on top of the risk manager, until ``risk`` has them.

Interim: :class:`~kmg_autotrader.risk.manager.RiskManager` sizes entries from the distance to
the stop-loss, so it refuses a stop-less candidate (``sma_cross_rsi`` has none) and has no
fixed stake. :class:`StakeRiskGate` keeps every decision the manager's own — it calls only its
public :meth:`~kmg_autotrader.risk.manager.RiskManager.evaluate` — and then applies one more
clamp: the approved amount is lowered to ``stake_amount`` of quote currency (never raised).

* A stop-less entry is shown to the manager with a placeholder stop at half the price (only so
  it can be sized); the placeholder is removed from the approved intent, so no stop is placed.
* ``fee_edge=False`` (``--no-fee-edge``, for strategies that must run their rules exactly) shows
  the manager an expected move that clears the fee-edge rule; every other gate still applies.

Replace with ``RiskParams.stake_amount`` once it exists (see the backtest notes).
"""

from __future__ import annotations

import dataclasses
from decimal import ROUND_DOWN, Decimal
from typing import Any, TypeVar

from kmg_autotrader.domain import Candidate, MarketInfo, OrderIntent, RiskDecision, Side
from kmg_autotrader.risk.manager import RiskManager

_CLEARS_ANY_FEE = 1.0  # an expected move of 100 % passes any fee-edge requirement

_T = TypeVar("_T", Candidate, OrderIntent, RiskDecision)
_set = object.__setattr__


def _field_names(cls: type) -> tuple[str, ...]:
    # _replaced stores every field as given, so it must not skip an __init__ that does more
    assert not hasattr(cls, "__post_init__"), cls
    assert all(f.init for f in dataclasses.fields(cls)), cls
    return tuple(f.name for f in dataclasses.fields(cls))


_NAMES: dict[type, tuple[str, ...]] = {
    cls: _field_names(cls) for cls in (Candidate, OrderIntent, RiskDecision)
}


def _replaced(obj: _T, changes: dict[str, Any]) -> _T:
    """``dataclasses.replace(obj, **changes)`` for the frozen, slotted records of one entry.

    Their ``__init__`` only stores the fields (checked above), so they are stored directly:
    about twice as fast, and the gate copies three records per approved entry.
    """
    new = object.__new__(type(obj))
    for name in _NAMES[type(obj)]:
        _set(new, name, changes[name] if name in changes else getattr(obj, name))
    return new


class StakeRiskGate:
    """A :class:`~kmg_autotrader.pipeline.RiskGate`: the risk manager, then the stake clamp."""

    def __init__(self, manager: RiskManager, stake_amount: Decimal, *, fee_edge: bool = True):
        if stake_amount <= 0:
            raise ValueError("stake amount must be positive")
        self.manager = manager
        self.stake_amount = stake_amount
        self.fee_edge = fee_edge

    def __getattr__(self, name: str) -> Any:
        # resume, status… go straight to the manager
        return getattr(self.manager, name)

    # The pipeline's calls on every candle and trade, forwarded directly: an attribute that
    # reaches __getattr__ first fails the normal lookup, which costs an exception each time.

    def update_equity(self, equity: Decimal | float, at_ms: int) -> None:
        """The manager's ``update_equity``."""
        self.manager.update_equity(equity, at_ms)

    def record_entry(self, symbol: str, at_ms: int) -> None:
        """The manager's ``record_entry``."""
        self.manager.record_entry(symbol, at_ms)

    def record_trade_closed(self, symbol: str, pnl: Decimal | float, at_ms: int) -> None:
        """The manager's ``record_trade_closed``."""
        self.manager.record_trade_closed(symbol, pnl, at_ms)

    def cancel_entry(self, symbol: str) -> None:
        """The manager's ``cancel_entry``."""
        self.manager.cancel_entry(symbol)

    def evaluate(
        self, candidate: Candidate, portfolio_state: Any, market: MarketInfo
    ) -> RiskDecision:
        """The manager's verdict; an approved entry is clamped to the stake."""
        if candidate.side is not Side.BUY:
            return self.manager.evaluate(candidate, portfolio_state, market)
        shown_changes: dict[str, Any] = {}
        if candidate.stop_loss is None:
            shown_changes["stop_loss"] = candidate.price / 2
        if not self.fee_edge:
            shown_changes["expected_move"] = _CLEARS_ANY_FEE
        shown = _replaced(candidate, shown_changes) if shown_changes else candidate
        decision = self.manager.evaluate(shown, portfolio_state, market)
        if not decision.approved or decision.intent is None:
            return decision
        intent = decision.intent
        stake = (self.stake_amount / intent.price / market.amount_step).to_integral_value(
            rounding=ROUND_DOWN
        ) * market.amount_step
        adjustments = list(decision.adjustments)
        intent_changes: dict[str, Any] = {}
        if stake < intent.amount:
            adjustments.append(f"stake {self.stake_amount}: {intent.amount} → {stake}")
            intent_changes["amount"] = stake
        if candidate.stop_loss is None:
            intent_changes["stop_loss"] = None
        if intent_changes:
            intent = _replaced(intent, intent_changes)
        if not self.fee_edge:
            adjustments.append("fee-edge rule not applied (--no-fee-edge)")
        return _replaced(decision, {"intent": intent, "adjustments": tuple(adjustments)})
