"""Signal engine: indicators, rules, regimes, pluggable strategies, pre-trade filters.

Entry points: :class:`SignalEngine` (``run_history`` for backtests, ``warm_up``/``on_candle``
live), :class:`SignalParams` (validated settings), :func:`load_strategy_class` (``STRATEGY``).

Names load on first use (PEP 562): the settings read :class:`SignalParams` on every command,
which must not pull in the engine, pandas and TA-Lib (~1 CPU-s, ~130 MB).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULE_OF = {
    "Decision": "engine",
    "HistoryRun": "engine",
    "SignalEngine": "engine",
    "FeeSchedule": "fees",
    "FilterReport": "filters",
    "PreTradeFilters": "filters",
    "SignalParams": "params",
}


def __getattr__(name: str) -> Any:
    """Load an exported name from its submodule on first use."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_MODULE_OF.get(name, 'strategies')}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
