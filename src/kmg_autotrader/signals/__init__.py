"""Signal engine: indicators, rules, regimes, pluggable strategies, pre-trade filters.

Entry points: :class:`SignalEngine` (``run_history`` for backtests, ``warm_up``/``on_candle``
live), :class:`SignalParams` (validated settings), :func:`load_strategy_class` (``STRATEGY``).
"""

from kmg_autotrader.signals.engine import Decision, HistoryRun, SignalEngine
from kmg_autotrader.signals.fees import FeeSchedule
from kmg_autotrader.signals.filters import FilterReport, PreTradeFilters
from kmg_autotrader.signals.params import SignalParams
from kmg_autotrader.signals.strategies import (
    Decisions,
    DefaultStrategy,
    SmaCrossRsi,
    Strategy,
    StrategyFrame,
    StrategyLoadError,
    available_strategies,
    create_strategy,
    load_strategy_class,
    register_strategy,
)

__all__ = [
    "Decision",
    "Decisions",
    "DefaultStrategy",
    "FeeSchedule",
    "FilterReport",
    "HistoryRun",
    "PreTradeFilters",
    "SignalEngine",
    "SignalParams",
    "SmaCrossRsi",
    "Strategy",
    "StrategyFrame",
    "StrategyLoadError",
    "available_strategies",
    "create_strategy",
    "load_strategy_class",
    "register_strategy",
]
