"""Size arithmetic: precision rounding, ATR-based risk sizing, caps expressed as amounts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal, localcontext

from kmg_autotrader.risk.reasons import ReasonCode
from kmg_autotrader.risk.units import percent_text

_HUNDRED = Decimal(100)
_ZERO = Decimal(0)


def round_down(amount: Decimal, step: Decimal) -> Decimal:
    """``amount`` rounded down to a multiple of ``step`` (never up: no dust, no overspend)."""
    if amount <= 0:
        return Decimal(0)
    return (amount / step).to_integral_value(rounding=ROUND_DOWN) * step


def round_up(amount: Decimal, step: Decimal) -> Decimal:
    """``amount`` rounded up to a multiple of ``step``."""
    if amount <= 0:
        return Decimal(0)
    return (amount / step).to_integral_value(rounding=ROUND_CEILING) * step


def risk_based_amount(
    equity: Decimal, risk_percent: Decimal, price: Decimal, stop: Decimal
) -> Decimal:
    """Amount whose loss from ``price`` down to ``stop`` is ``risk_percent`` of equity."""
    return equity * risk_percent / _HUNDRED / (price - stop)


@dataclass(frozen=True, slots=True)
class SizeCap:
    """An upper bound on the amount, with the rule it comes from."""

    code: ReasonCode
    label: str  # e.g. "MAX_POSITION_PERCENT 0.2"
    max_amount: Decimal


def entry_caps(
    *,
    equity: Decimal,
    cash: Decimal,
    exposure: Decimal,
    price: Decimal,
    max_position: Decimal,
    max_exposure: Decimal,
    entry_cost_rate: Decimal,
) -> list[SizeCap]:
    """The hard caps of an entry: one position, all positions together, free cash.

    ``entry_cost_rate`` is the fee plus slippage of the entry fill, so the cash cap covers them.
    Divisions round toward zero, so a size at a cap never exceeds it by a rounding error.
    """
    amounts = cap_amounts(
        equity=equity,
        cash=cash,
        exposure=exposure,
        price=price,
        max_position=max_position,
        max_exposure=max_exposure,
        entry_cost_rate=entry_cost_rate,
    )
    return label_caps(amounts, max_position=max_position, max_exposure=max_exposure, cash=cash)


#: The reason code of each amount :func:`cap_amounts` returns, in its order.
CAP_CODES = (ReasonCode.POSITION_CAP, ReasonCode.MAX_EXPOSURE, ReasonCode.INSUFFICIENT_CASH)


def cap_amounts(
    *,
    equity: Decimal,
    cash: Decimal,
    exposure: Decimal,
    price: Decimal,
    max_position: Decimal,
    max_exposure: Decimal,
    entry_cost_rate: Decimal,
) -> tuple[Decimal, Decimal, Decimal]:
    """The amounts of :func:`entry_caps` alone (in :data:`CAP_CODES` order), without labels.

    Sizing needs the labels only when a cap binds; most entries fit every cap.
    """
    with localcontext() as ctx:
        ctx.rounding = ROUND_FLOOR
        return (
            equity * max_position / price,
            _not_negative(equity * max_exposure - exposure) / price,
            _not_negative(cash) / (price * (1 + entry_cost_rate)),
        )


def label_caps(
    amounts: tuple[Decimal, Decimal, Decimal],
    *,
    max_position: Decimal,
    max_exposure: Decimal,
    cash: Decimal,
) -> list[SizeCap]:
    """The amounts of :func:`cap_amounts` as :class:`SizeCap` records with their rules."""
    position, total, free = amounts
    return [
        SizeCap(
            ReasonCode.POSITION_CAP, f"MAX_POSITION_PERCENT {percent_text(max_position)}", position
        ),
        SizeCap(
            ReasonCode.MAX_EXPOSURE,
            f"max_total_exposure_percent {percent_text(max_exposure)}",
            total,
        ),
        SizeCap(ReasonCode.INSUFFICIENT_CASH, f"free cash {cash}", free),
    ]


def _not_negative(value: Decimal) -> Decimal:
    """``max(Decimal(0), value)``: ``value`` when above zero, else zero (exponent 0)."""
    return value if value > _ZERO else _ZERO
