"""Indicators: one engine with a vectorised path (history) and an incremental path (live)."""

from kmg_autotrader.signals.indicators.engine import (
    INDICATOR_COLUMNS,
    PRICE_COLUMNS,
    Frame,
    IndicatorEngine,
    compute_indicators,
    true_range,
)
from kmg_autotrader.signals.indicators.nodes import TalibNode

__all__ = [
    "INDICATOR_COLUMNS",
    "PRICE_COLUMNS",
    "Frame",
    "IndicatorEngine",
    "TalibNode",
    "compute_indicators",
    "true_range",
]
