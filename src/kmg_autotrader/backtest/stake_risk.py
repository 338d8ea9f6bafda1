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

from decimal import ROUND_DOWN, Decimal
from typing import Any

from kmg_autotrader.domain import Candidate, MarketInfo, OrderIntent, RiskDecision, Side
from kmg_autotrader.risk.draft import check_field_order
from kmg_autotrader.risk.manager import RiskManager

_CLEARS_ANY_FEE = 1.0  # an expected move of 100 % passes any fee-edge requirement
_BUY = Side.BUY  # an enum member read through its class costs a __getattr__ hook each time


check_field_order(
    Candidate,
    (
        "symbol",
        "timeframe",
        "timestamp",
        "side",
        "price",
        "stop_loss",
        "take_profit",
        "confidence",
        "expected_move",
        "strategy",
        "regime",
        "signals",
        "trace",
    ),
)  # OrderIntent and RiskDecision are checked where the risk manager builds them (draft)

# The three copies of an entry are ``dataclasses.replace`` spelled out, positionally in field
# order (checked at import): a keyword call or a loop over the fields costs twice as much,
# and the gate copies three records per approved entry.


def _shown_candidate(c: Candidate, stop_loss: float | None, expected_move: float) -> Candidate:
    """``dataclasses.replace(c, stop_loss=stop_loss, expected_move=expected_move)``."""
    return Candidate(
        c.symbol,
        c.timeframe,
        c.timestamp,
        c.side,
        c.price,
        stop_loss,
        c.take_profit,
        c.confidence,
        expected_move,
        c.strategy,
        c.regime,
        c.signals,
        c.trace,
    )


def _clamped_intent(i: OrderIntent, amount: Decimal, stop_loss: Decimal | None) -> OrderIntent:
    """``dataclasses.replace(i, amount=amount, stop_loss=stop_loss)``."""
    return OrderIntent(
        i.mode,
        i.symbol,
        i.side,
        amount,
        i.price,
        stop_loss,
        i.take_profit,
        i.created_at,
        i.reason,
        i.signal_id,
        i.risk_decision_id,
    )


def _clamped_decision(
    d: RiskDecision, intent: OrderIntent, adjustments: tuple[str, ...]
) -> RiskDecision:
    """``dataclasses.replace(d, intent=intent, adjustments=adjustments)``."""
    return RiskDecision(
        d.approved,
        d.reason_code,
        d.message,
        d.symbol,
        d.side,
        d.timestamp,
        intent,
        adjustments,
        d.checks,
    )


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
        if candidate.side is not _BUY:
            return self.manager.evaluate(candidate, portfolio_state, market)
        fee_edge = self.fee_edge
        stop_loss = candidate.stop_loss
        shown = candidate
        if stop_loss is None or not fee_edge:
            shown = _shown_candidate(
                candidate,
                candidate.price / 2 if stop_loss is None else stop_loss,
                candidate.expected_move if fee_edge else _CLEARS_ANY_FEE,
            )
        decision = self.manager.evaluate(shown, portfolio_state, market)
        if not decision.approved or decision.intent is None:
            return decision
        intent = decision.intent
        stake_amount = self.stake_amount
        stake = (stake_amount / intent.price / market.amount_step).to_integral_value(
            rounding=ROUND_DOWN
        ) * market.amount_step
        adjustments = list(decision.adjustments)
        amount = intent.amount
        if stake < amount:
            # {x!s} of a Decimal: the text format() gives, without parsing an empty spec
            adjustments.append(f"stake {stake_amount!s}: {amount!s} → {stake!s}")
        if stake < amount or stop_loss is None:
            intent = _clamped_intent(
                intent,
                stake if stake < amount else amount,
                None if stop_loss is None else intent.stop_loss,
            )
        if not fee_edge:
            adjustments.append("fee-edge rule not applied (--no-fee-edge)")
        return _clamped_decision(decision, intent, tuple(adjustments))
