"""Exits: a sell of what is held is always allowed; only nothing or dust is refused.

Entry-only rules (breaker, kill-switch, cooldowns, position limits) never apply here, so a
stop-loss or a flatten can always leave the market.
"""

from __future__ import annotations

from decimal import Decimal

from kmg_autotrader.domain import MarketInfo, Mode, OrderIntent, RiskDecision, Side
from kmg_autotrader.risk import sizing
from kmg_autotrader.risk.draft import DecisionDraft
from kmg_autotrader.risk.portfolio_state import PortfolioState
from kmg_autotrader.risk.reasons import ReasonCode
from kmg_autotrader.risk.rules import Rejection, check_minimums


def decide_exit(
    draft: DecisionDraft,
    portfolio: PortfolioState,
    market: MarketInfo,
    *,
    mode: Mode,
    signal_id: int | None,
) -> RiskDecision:
    """Sell the bot's position, never more than is held, rounded down to the step.

    Only what the bot bought is sold (a position must be open), so coins the owner holds
    outside the bot are never touched.
    """
    candidate = draft.candidate
    position = portfolio.positions.get(candidate.symbol)
    held = portfolio.holdings.get(market.base, Decimal(0))
    draft.checks.update(held=held, position_amount=position.amount if position else None)
    if position is None or position.amount <= 0:
        return draft.reject(
            Rejection(
                ReasonCode.NO_HOLDINGS,
                f"no open position in {candidate.symbol} to sell (spot: no shorting)",
            )
        )
    if held <= 0:
        return draft.reject(Rejection(ReasonCode.NO_HOLDINGS, f"no {market.base} is held to sell"))
    amount = position.amount
    if held < amount:
        draft.adjustments.append(f"sell capped to the {market.base} held: {amount} → {held}")
        amount = held
    rounded = sizing.round_down(amount, market.amount_step)
    if rounded != amount:
        draft.adjustments.append(
            f"rounded down to amount step {market.amount_step}: {amount} → {rounded} {market.base}"
        )
    price = draft.price
    draft.checks.update(amount=rounded, proceeds=rounded * price)
    dust = check_minimums(rounded, price, market)
    if dust is not None:
        return draft.reject(Rejection(dust.code, f"dust: {dust.message}"))
    intent = OrderIntent(
        mode=mode,
        symbol=candidate.symbol,
        side=Side.SELL,
        amount=rounded,
        price=price,
        stop_loss=None,
        take_profit=None,
        created_at=draft.now_ms,
        reason=f"{candidate.strategy} exit",
        signal_id=signal_id,
    )
    return draft.approve(intent, f"sell {rounded} {market.base} at {price}")
