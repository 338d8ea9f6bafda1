"""Execution: paper exchange, execution manager, OCO monitor, mental SL/TP, flatten, reconcile.

Everything here talks to an exchange only through :class:`~.ports.ExchangePort` and records
orders, fills and positions only through :class:`~.ports.TradingStore`, so the same code runs
live, on the paper exchange fed by live prices, and in a backtest on simulated time.

Every name here is imported from its submodule on first use (PEP 562): ``store_db`` (the
database store: SQLAlchemy, Alembic) only with ``RepositoryStore``, so a backtest or a test that
never touches the database does not pay for it, and importing a submodule such as
``cli_commands`` loads nothing else.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Imported eagerly: ``flatten`` is also a submodule's name, and the import system would bind that
# submodule to this package attribute when it loads, hiding a lazily exported function.
from kmg_autotrader.execution.flatten import FlattenSummary, flatten

if TYPE_CHECKING:
    from kmg_autotrader.execution.errors import (
        ExecutionError,
        IntentBlockedError,
        LiveTradingRefusedError,
        OrderRejectedError,
        UnresolvedOrderError,
    )
    from kmg_autotrader.execution.fees import DEFAULT_FEES, FeeSchedule, SlippageModel
    from kmg_autotrader.execution.live_guard import ensure_live_allowed
    from kmg_autotrader.execution.manager import (
        ExecutionConfig,
        ExecutionManager,
        ExecutionReport,
    )
    from kmg_autotrader.execution.orders import RetrySettings
    from kmg_autotrader.execution.paper import (
        FileLedger,
        MemoryLedger,
        PaperEngine,
        PaperExchange,
        PaperSettings,
    )
    from kmg_autotrader.execution.ports import ExchangePort, TradingStore
    from kmg_autotrader.execution.rate_limit import NoRateLimit, RateLimiter
    from kmg_autotrader.execution.reconcile import Reconciler, ReconciliationReport
    from kmg_autotrader.execution.store_db import RepositoryStore
    from kmg_autotrader.execution.store_memory import MemoryStore
    from kmg_autotrader.execution.tracker import ExitSignal, PositionTracker

#: public name → submodule that defines it, imported on first access (PEP 562)
_LAZY = {
    "ExecutionError": "errors",
    "IntentBlockedError": "errors",
    "LiveTradingRefusedError": "errors",
    "OrderRejectedError": "errors",
    "UnresolvedOrderError": "errors",
    "DEFAULT_FEES": "fees",
    "FeeSchedule": "fees",
    "SlippageModel": "fees",
    "ensure_live_allowed": "live_guard",
    "ExecutionConfig": "manager",
    "ExecutionManager": "manager",
    "ExecutionReport": "manager",
    "RetrySettings": "orders",
    "FileLedger": "paper",
    "MemoryLedger": "paper",
    "PaperEngine": "paper",
    "PaperExchange": "paper",
    "PaperSettings": "paper",
    "ExchangePort": "ports",
    "TradingStore": "ports",
    "NoRateLimit": "rate_limit",
    "RateLimiter": "rate_limit",
    "Reconciler": "reconcile",
    "ReconciliationReport": "reconcile",
    "RepositoryStore": "store_db",
    "MemoryStore": "store_memory",
    "ExitSignal": "tracker",
    "PositionTracker": "tracker",
}


def __getattr__(name: str) -> Any:
    """Import a lazily exported name's submodule on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Module attributes, including the lazily imported ones."""
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEFAULT_FEES",
    "ExchangePort",
    "ExecutionConfig",
    "ExecutionError",
    "ExecutionManager",
    "ExecutionReport",
    "ExitSignal",
    "FeeSchedule",
    "FileLedger",
    "FlattenSummary",
    "IntentBlockedError",
    "LiveTradingRefusedError",
    "MemoryLedger",
    "MemoryStore",
    "NoRateLimit",
    "OrderRejectedError",
    "PaperEngine",
    "PaperExchange",
    "PaperSettings",
    "PositionTracker",
    "RateLimiter",
    "Reconciler",
    "ReconciliationReport",
    "RepositoryStore",
    "RetrySettings",
    "SlippageModel",
    "TradingStore",
    "UnresolvedOrderError",
    "ensure_live_allowed",
    "flatten",
]
