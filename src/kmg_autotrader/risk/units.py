"""The unit of each risk parameter as a person reads and types it: every percentage in percent.

The rules, the database and ``.env`` keep what the spec gives: ``MAX_POSITION_PERCENT=0.2`` (a
fraction of equity), ``MAX_DRAWDOWN=5.0`` (percent). The dashboard, its API, the CLI and the
messages show and accept percent for all of them: ``max_position_percent`` 20 means 20 %, as
``risk_per_trade_percent`` 1 means 1 %. :func:`shown` and :func:`stored` convert at that edge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import annotated_types

# stored as fractions of 1 (0.2 = 20 %), shown and typed in percent
FRACTION_FIELDS = frozenset(
    {"max_position_percent", "max_total_exposure_percent", "fee_safety_margin"}
)

UNITS: dict[str, str] = {
    "max_position_percent": "%",
    "risk_per_trade_percent": "%",
    "max_total_exposure_percent": "%",
    "max_drawdown_percent": "%",
    "daily_loss_limit_percent": "%",
    "fee_safety_margin": "%",
    "slippage_bps": "bps",
    "cooldown_minutes": "min",
    "cooldown_after_loss_minutes": "min",
    "pending_entry_minutes": "min",
    "stake_amount": "quote",
}

# what a person reads next to the field (the model's own descriptions speak of storage)
DESCRIPTIONS: dict[str, str] = {
    "max_position_percent": "hard cap of one position, percent of equity "
    "(.env MAX_POSITION_PERCENT holds it as a fraction: 0.2 = 20 %)",
    "risk_per_trade_percent": "equity risked between entry and stop, percent",
    "max_total_exposure_percent": "all positions together, percent of equity",
    "max_drawdown_percent": "drawdown from the equity peak that stops entries, percent "
    "(.env MAX_DRAWDOWN)",
    "daily_loss_limit_percent": "loss from the UTC day's starting equity, percent",
    "slippage_bps": "expected slippage per fill, basis points (1 bps = 0.01 %)",
    "fee_safety_margin": "extra edge over fees and slippage, percent of notional",
}


def to_percent(fraction: float) -> float:
    """0.2 → 20.0 (rounded off binary noise: 0.07 shows as 7.0, not 7.000000000000001)."""
    return round(fraction * 100, 10)


def to_fraction(percent: float) -> float:
    """20 → 0.2 (as the float a person would write)."""
    return round(percent / 100, 12)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def shown(values: Mapping[str, Any]) -> dict[str, Any]:
    """Stored values → what the dashboard, API and CLI show (fractions become percent)."""
    return {
        name: to_percent(value) if name in FRACTION_FIELDS and _number(value) else value
        for name, value in values.items()
    }


def stored(values: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values (percent) → what the rules store. Anything not a number passes unchanged,
    so validation still names it."""
    return {
        name: to_fraction(value) if name in FRACTION_FIELDS and _number(value) else value
        for name, value in values.items()
    }


def percent_text(fraction: float | Decimal) -> str:
    """A stored fraction in words: 0.2 → '20 %', 0.0015 → '0.15 %'."""
    return f"{to_percent(float(fraction)):g} %"


def value_text(name: str, value: Any) -> str:
    """A stored value as a person reads it, with its unit: '20 %', '5 bps', '30 min'."""
    if value is None or not _number(value):
        return str(value)
    unit = UNITS.get(name)
    if unit == "%":
        number = to_percent(value) if name in FRACTION_FIELDS else float(value)
        return f"{number:g} %"
    if unit in ("bps", "min"):
        return f"{value:g} {unit}"
    return str(value)


_BOUNDS = (annotated_types.Gt, annotated_types.Ge, annotated_types.Lt, annotated_types.Le)


def shown_metadata(name: str, metadata: list[Any]) -> list[Any]:
    """A field's range constraints in the unit it is typed in (a fraction's 0 < x ≤ 1 becomes
    0 < x ≤ 100), so a refusal names the bound a person typed against."""
    if name not in FRACTION_FIELDS:
        return list(metadata)
    out = []
    for item in metadata:
        if isinstance(item, _BOUNDS):
            field = dataclasses.fields(item)[0].name  # gt, ge, lt or le
            item = type(item)(to_percent(getattr(item, field)))
        out.append(item)
    return out
