"""Entries: every gate in a fixed order, then ATR-based sizing clamped by every cap.

The size is the amount that loses ``risk_per_trade_percent`` of equity between entry and
stop, then clamped by the position cap, the exposure cap and free cash, rounded down to the
exchange's step and checked against its minimums. Each clamp is written down.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from kmg_autotrader.domain import ExecutionMode, MarketInfo, Mode, OrderIntent, RiskDecision, Side
from kmg_autotrader.risk import costs, rules, sizing
from kmg_autotrader.risk.draft import DecisionDraft, to_decimal
from kmg_autotrader.risk.params import ParamDecimals, RiskParams, param_decimals
from kmg_autotrader.risk.portfolio_state import PortfolioState
from kmg_autotrader.risk.rules import Rejection
from kmg_autotrader.risk.state import RiskState

FeeGate = Callable[[DecisionDraft, RiskParams, MarketInfo], Rejection | None]
Sizer = Callable[
    [DecisionDraft, RiskParams, PortfolioState, Decimal, MarketInfo], Decimal | Rejection
]

# the checks key of each amount of sizing.cap_amounts, in its order, e.g. "cap_position_cap"
_CAP_AMOUNT_KEYS = tuple(f"cap_{code.value.lower()}" for code in sizing.CAP_CODES)
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_BUY = Side.BUY  # an enum member read through its class costs a __getattr__ hook each time


def decide_entry(
    draft: DecisionDraft,
    state: RiskState,
    params: RiskParams,
    portfolio: PortfolioState,
    market: MarketInfo,
    *,
    mode: Mode,
    signal_id: int | None,
    fee_gate: FeeGate,
    sizer: Sizer,
) -> RiskDecision:
    """Approve a sized buy, or reject it at the first gate that says no.

    ``fee_gate`` and ``sizer`` are :func:`fee_edge` and :func:`size_entry` bound to the
    execution mode (the manager passes its own methods, which a research subclass may wrap).
    """
    candidate, now = draft.candidate, draft.now_ms
    symbol = candidate.symbol
    in_flight = rules.pending_entries(state, portfolio, params, now)
    open_count = len(portfolio.positions) + len(in_flight)
    exposure = portfolio.exposure + (sum(in_flight.values(), _ZERO) if in_flight else _ZERO)
    checks = draft.checks
    checks["entries_in_flight"] = len(in_flight)
    checks["exposure_with_in_flight"] = exposure
    # the gates in their fixed order; the first "no" is the answer
    rejection = (
        rules.check_drawdown_breaker(state)
        or rules.check_daily_kill_switch(state)
        or rules.check_daily_trade_limit(state, params)
        or rules.check_not_in_position(symbol, portfolio, state, params, now)
        or rules.check_max_positions(open_count, params)
        or rules.check_loss_cooldown(symbol, state, params, now)
        or rules.check_symbol_cooldown(symbol, state, params, now)
        or fee_gate(draft, params, market)
        or rules.check_exposure_room(portfolio.equity, exposure, params)
    )
    if rejection:
        return draft.reject(rejection)
    sized = sizer(draft, params, portfolio, exposure, market)
    if isinstance(sized, Rejection):
        return draft.reject(sized)
    price = draft.price
    # positional, in field order (checked in draft): a keyword call builds a dict first
    intent = OrderIntent(
        mode,
        symbol,
        _BUY,
        sized,
        price,
        draft.stop_loss,
        _optional_decimal(candidate.take_profit),
        now,
        f"{candidate.strategy} entry",
        signal_id,
    )
    # {x!s} of a Decimal: the text format() gives it, without parsing an empty format spec
    return draft.approve(
        intent, f"buy {sized!s} {market.base} at {price!s} (cost {sized * price:.2f})"
    )


def _optional_decimal(value: float | None) -> Decimal | None:
    return None if value is None else to_decimal(value)


def fee_edge(
    draft: DecisionDraft, params: RiskParams, market: MarketInfo, execution_mode: ExecutionMode
) -> Rejection | None:
    """The fee-adjusted edge rule, with its figures recorded in the checks."""
    candidate = draft.candidate
    expected = to_decimal(candidate.expected_move)
    if expected <= 0 and candidate.take_profit is not None:
        # no explicit expectation: the distance to the take-profit is the move aimed for
        price = draft.price
        expected = (to_decimal(candidate.take_profit) - price) / price
    edge = costs.fee_edge(market, execution_mode, params)
    checks = draft.checks
    checks["expected_move"] = expected
    checks["round_trip_fees"] = edge.fees
    checks["slippage_round_trip"] = edge.slippage
    checks["fee_safety_margin"] = edge.margin
    checks["required_edge"] = edge.required
    return rules.check_fee_edge(expected, edge)


def size_entry(
    draft: DecisionDraft,
    params: RiskParams,
    portfolio: PortfolioState,
    exposure: Decimal,
    market: MarketInfo,
    execution_mode: ExecutionMode,
) -> Decimal | Rejection:
    """ATR-based (or fixed-stake) size, clamped by every cap, rounded down, checked against
    the minimums."""
    price = draft.price
    decimals = param_decimals(params)
    equity, cash = portfolio.equity, portfolio.cash
    amount = _target_amount(draft, decimals, equity, price)
    amounts = sizing.cap_amounts(
        equity=equity,
        cash=cash,
        exposure=exposure,
        price=price,
        max_position=decimals.max_position_percent,
        max_exposure=decimals.max_total_exposure_percent,
        entry_cost_rate=costs.entry_fee_rate(market, execution_mode) + decimals.slippage_rate,
    )
    checks = draft.checks
    for key, max_amount in zip(_CAP_AMOUNT_KEYS, amounts, strict=True):
        checks[key] = max_amount
    # The caps are labelled (SizeCap records) only when one binds or the size is raised to
    # the minimum: most entries fit every cap, and the records cost more than the amounts.
    caps: list[sizing.SizeCap] | None = None
    binding: sizing.SizeCap | None = None
    for index, max_amount in enumerate(amounts):
        if amount > max_amount:
            caps = caps or _label_caps(amounts, decimals, cash)
            binding = caps[index]
            draft.adjustments.append(
                f"size capped by {binding.label}: {amount:.8g} → {max_amount:.8g} {market.base}"
            )
            amount = max_amount
    rounded = sizing.round_down(amount, market.amount_step)
    if rounded != amount:
        draft.adjustments.append(
            f"rounded down to amount step {market.amount_step!s}: {amount:.8g} → {rounded!s} "
            f"{market.base}"
        )
    checks["amount"] = rounded
    checks["cost"] = rounded * price
    shortfall = rules.check_minimums(rounded, price, market)
    if shortfall is None:
        return rounded
    if params.allow_min_size_adjust:
        caps = caps or _label_caps(amounts, decimals, cash)
        return adjust_to_minimum(draft, rounded, price, market, caps, shortfall)
    if binding is not None:
        # a cap pushed the size under the minimum: name the cap, it is the real reason
        return Rejection(
            binding.code,
            f"{binding.label} limits the size to {rounded} {market.base}, {shortfall.message}",
        )
    return shortfall


def _label_caps(
    amounts: tuple[Decimal, Decimal, Decimal], decimals: ParamDecimals, cash: Decimal
) -> list[sizing.SizeCap]:
    return sizing.label_caps(
        amounts,
        max_position=decimals.max_position_percent,
        max_exposure=decimals.max_total_exposure_percent,
        cash=cash,
    )


def _target_amount(
    draft: DecisionDraft, decimals: ParamDecimals, equity: Decimal, price: Decimal
) -> Decimal:
    """The size before caps: a fixed stake if set, else risk between entry and stop."""
    stake = decimals.stake_amount
    if stake is not None:
        amount = stake / price
        draft.checks["stake_amount"] = stake
        draft.checks["stake_based_amount"] = amount
        return amount
    stop = draft.stop_loss
    assert stop is not None  # rules.check_candidate refuses a risk-sized entry without
    # sizing.risk_based_amount's arithmetic, step by step: its two intermediate figures are
    # recorded too, so each is computed once
    risk_amount = equity * decimals.risk_per_trade_percent / _HUNDRED
    stop_distance = price - stop
    amount = risk_amount / stop_distance
    checks = draft.checks
    checks["risk_amount"] = risk_amount
    checks["stop_distance"] = stop_distance
    checks["risk_based_amount"] = amount
    return amount


def adjust_to_minimum(
    draft: DecisionDraft,
    amount: Decimal,
    price: Decimal,
    market: MarketInfo,
    caps: list[sizing.SizeCap],
    shortfall: Rejection,
) -> Decimal | Rejection:
    """Raise the size to the market minimum, only if that still fits every cap."""
    minimum = sizing.round_up(
        max(market.min_amount, market.min_cost / price, market.amount_step), market.amount_step
    )
    for cap in caps:
        if minimum > cap.max_amount:
            return Rejection(
                cap.code,
                f"{shortfall.message}; the minimum {minimum} {market.base} would break {cap.label}",
            )
    draft.adjustments.append(f"raised to the market minimum: {amount} → {minimum} {market.base}")
    draft.checks.update(amount=minimum, cost=minimum * price, adjusted_to_minimum=True)
    return minimum
