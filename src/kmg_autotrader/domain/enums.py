"""Enumerations shared by every stage. String-valued so they store and serialise as text."""

from enum import StrEnum


class Mode(StrEnum):
    """Trading mode. Every trading row carries one; PAPER and LIVE never mix."""

    PAPER = "paper"
    LIVE = "live"


class Side(StrEnum):
    """Order or signal side (spot only: a sell closes or reduces a long)."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """Order types the execution layer sends."""

    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    """Life cycle of an order we track.

    ``UNRESOLVED`` is an order whose outcome is unknown (e.g. a timeout after sending); it is
    resolved only by what the exchange says, never by a guess.
    """

    PENDING = "pending"  # created locally, not yet sent
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNRESOLVED = "unresolved"
    LOST = "lost"  # the exchange repeatedly says it does not know the order

    @property
    def is_terminal(self) -> bool:
        """True when no further fill can arrive for an order in this state."""
        return self in _TERMINAL


# built once (a set literal in ``is_terminal`` was rebuilt on every call)
_TERMINAL = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.LOST,
    }
)


class ExecutionMode(StrEnum):
    """How an approved intent is turned into orders."""

    MARKET_ONLY = "MARKET_ONLY"
    LIMIT_BRACKET = "LIMIT_BRACKET"


class Regime(StrEnum):
    """Market regime attached to every signal."""

    TREND_UP = "trend_up"
    TREND_DOWN = "trend_down"
    RANGE = "range"
    HIGH_VOLATILITY = "high_volatility"
    CHOP = "chop"
    UNKNOWN = "unknown"  # not enough history yet (warm-up)


class AdvisorAction(StrEnum):
    """Action an LLM answer may propose."""

    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"
