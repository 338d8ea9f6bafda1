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
from typing import Any

from kmg_autotrader.domain import Candidate, MarketInfo, RiskDecision, Side
from kmg_autotrader.risk.manager import RiskManager

_CLEARS_ANY_FEE = 1.0  # an expected move of 100 % passes any fee-edge requirement


class StakeRiskGate:
    """A :class:`~kmg_autotrader.pipeline.RiskGate`: the risk manager, then the stake clamp."""

    def __init__(self, manager: RiskManager, stake_amount: Decimal, *, fee_edge: bool = True):
        if stake_amount <= 0:
            raise ValueError("stake amount must be positive")
        self.manager = manager
        self.stake_amount = stake_amount
        self.fee_edge = fee_edge

    def __getattr__(self, name: str) -> Any:
        # record_entry, cancel_entry, update_equity… go straight to the manager
        return getattr(self.manager, name)

    def evaluate(
        self, candidate: Candidate, portfolio_state: Any, market: MarketInfo
    ) -> RiskDecision:
        """The manager's verdict; an approved entry is clamped to the stake."""
        if candidate.side is not Side.BUY:
            return self.manager.evaluate(candidate, portfolio_state, market)
        shown = candidate
        if candidate.stop_loss is None:
            shown = dataclasses.replace(shown, stop_loss=candidate.price / 2)
        if not self.fee_edge:
            shown = dataclasses.replace(shown, expected_move=_CLEARS_ANY_FEE)
        decision = self.manager.evaluate(shown, portfolio_state, market)
        if not decision.approved or decision.intent is None:
            return decision
        intent = decision.intent
        stake = (self.stake_amount / intent.price / market.amount_step).to_integral_value(
            rounding=ROUND_DOWN
        ) * market.amount_step
        adjustments = list(decision.adjustments)
        if stake < intent.amount:
            adjustments.append(f"stake {self.stake_amount}: {intent.amount} → {stake}")
            intent = dataclasses.replace(intent, amount=stake)
        if candidate.stop_loss is None:
            intent = dataclasses.replace(intent, stop_loss=None)
        if not self.fee_edge:
            adjustments.append("fee-edge rule not applied (--no-fee-edge)")
        return dataclasses.replace(decision, intent=intent, adjustments=tuple(adjustments))
