"""Errors of the execution layer (exchange errors themselves come from ``exchange.errors``)."""

from __future__ import annotations


class ExecutionError(Exception):
    """Base class of execution errors."""


class OrderRejectedError(ExecutionError):
    """The exchange refused the order for good (funds, limits, post-only would take…)."""


class UnresolvedOrderError(ExecutionError):
    """An order's outcome is unknown; it stays UNRESOLVED until the exchange says otherwise."""

    def __init__(self, message: str, client_order_id: str) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id


class IntentBlockedError(ExecutionError):
    """An intent cannot run: an order for it is unresolved, or it was already executed."""


class LiveTradingRefusedError(ExecutionError):
    """LIVE trading was asked for without every required confirmation."""
