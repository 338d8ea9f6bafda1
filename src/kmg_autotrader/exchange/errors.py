"""Adapter errors: every ccxt exception is mapped to *transient* (retry may help) or
*permanent* (retrying the same call will fail the same way)."""

from __future__ import annotations

from functools import cache


class ExchangeAdapterError(Exception):
    """Base class of errors raised by :class:`~kmg_autotrader.exchange.ExchangeAdapter`."""

    transient: bool = False

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class TransientExchangeError(ExchangeAdapterError):
    """Network trouble, rate limiting, timeouts, maintenance: try again later."""

    transient = True


class RateLimitedError(TransientExchangeError):
    """The exchange asked us to slow down (HTTP 429/418 or an equivalent message)."""


class ExchangeUnavailableError(TransientExchangeError):
    """The exchange cannot be reached or is down for maintenance."""


class AmbiguousOrderError(TransientExchangeError):
    """A request that may have changed state (e.g. an order) timed out: outcome unknown."""


class PermanentExchangeError(ExchangeAdapterError):
    """Bad request, bad symbol, rejected order, missing permission: do not retry as is."""


class AuthenticationFailedError(PermanentExchangeError):
    """Keys missing, wrong or without permission."""


class InsufficientFundsError(PermanentExchangeError):
    """Not enough balance for the order."""


class InvalidOrderError(PermanentExchangeError):
    """The exchange refused the order (size, price, precision, limits)."""


class OrderNotFoundError(PermanentExchangeError):
    """The exchange does not know the order."""


class UnknownSymbolError(PermanentExchangeError):
    """The symbol is not listed on the exchange (or markets are not loaded)."""


@cache
def _mapping() -> tuple[tuple[type[BaseException], type[ExchangeAdapterError]], ...]:
    """ccxt exception type → ours. ccxt is imported here, on the first error to map, so code
    that only needs our error classes (the paper exchange, the backtester) never loads it."""
    import ccxt

    # Most specific first: ccxt nests RateLimitExceeded in DDoSProtection in NetworkError.
    return (
        (ccxt.DDoSProtection, RateLimitedError),
        (ccxt.ExchangeNotAvailable, ExchangeUnavailableError),
        (ccxt.NetworkError, TransientExchangeError),
        (ccxt.OperationFailed, TransientExchangeError),  # e.g. Binance -1001 internal error
        (ccxt.AuthenticationError, AuthenticationFailedError),
        (ccxt.PermissionDenied, AuthenticationFailedError),
        (ccxt.AccountSuspended, AuthenticationFailedError),
        (ccxt.InsufficientFunds, InsufficientFundsError),
        (ccxt.OrderNotFound, OrderNotFoundError),
        (ccxt.InvalidOrder, InvalidOrderError),
        (ccxt.BadSymbol, UnknownSymbolError),
        (ccxt.BaseError, PermanentExchangeError),
    )


def map_ccxt_error(exc: BaseException, context: str = "") -> ExchangeAdapterError:
    """Translate a ccxt (or asyncio timeout) exception into an adapter error."""
    if isinstance(exc, ExchangeAdapterError):
        return exc
    prefix = f"{context}: " if context else ""
    if isinstance(exc, TimeoutError):
        return TransientExchangeError(f"{prefix}timed out", cause=exc)
    for ccxt_type, ours in _mapping():
        if isinstance(exc, ccxt_type):
            return ours(f"{prefix}{type(exc).__name__}: {exc}", cause=exc)
    return PermanentExchangeError(f"{prefix}{type(exc).__name__}: {exc}", cause=exc)
