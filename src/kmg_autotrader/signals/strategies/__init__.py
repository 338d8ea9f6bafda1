"""Pluggable strategies: the base class, the built-ins and the loader."""

from kmg_autotrader.signals.strategies.base import (
    STYLE_MEAN_REVERSION,
    STYLE_NONE,
    STYLE_TREND,
    STYLES,
    Decisions,
    Strategy,
    StrategyFrame,
)
from kmg_autotrader.signals.strategies.default import DefaultStrategy
from kmg_autotrader.signals.strategies.registry import (
    StrategyLoadError,
    available_strategies,
    create_strategy,
    load_strategy_class,
    register_strategy,
)
from kmg_autotrader.signals.strategies.sma_cross_rsi import SmaCrossRsi

__all__ = [
    "STYLES",
    "STYLE_MEAN_REVERSION",
    "STYLE_NONE",
    "STYLE_TREND",
    "Decisions",
    "DefaultStrategy",
    "SmaCrossRsi",
    "Strategy",
    "StrategyFrame",
    "StrategyLoadError",
    "available_strategies",
    "create_strategy",
    "load_strategy_class",
    "register_strategy",
]
