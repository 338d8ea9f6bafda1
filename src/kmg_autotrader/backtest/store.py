"""The in-memory trading store of backtests."""

from __future__ import annotations

from kmg_autotrader.execution import MemoryStore


class BacktestStore(MemoryStore):
    """:class:`~kmg_autotrader.execution.MemoryStore` as backtests use it. It used to add an
    index of orders by intent (a scan made long replays quadratic); ``MemoryStore`` keeps that
    index itself now, so this is the same store under the name the backtest code uses."""
