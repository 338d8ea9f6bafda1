"""Order-side values: intents, orders, fills and positions. Money is ``Decimal``."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from kmg_autotrader.domain.enums import Mode, OrderStatus, OrderType, Side
from kmg_autotrader.domain.fast_init import fast_init


@fast_init
@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An approved, sized instruction to trade, produced only by the risk manager.

    ``amount`` is in base currency, already rounded down to the market's precision.
    ``price`` is the reference price (quote) the decision was made at.
    """

    mode: Mode
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    created_at: int
    reason: str = ""
    signal_id: int | None = None
    risk_decision_id: int | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Order:
    """An order as we track it. ``client_order_id`` is generated before the order is sent."""

    mode: Mode
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    status: OrderStatus
    created_at: int
    price: Decimal | None = None
    exchange_order_id: str | None = None
    filled: Decimal = Decimal(0)
    average_price: Decimal | None = None
    fee: Decimal = Decimal(0)
    fee_currency: str | None = None
    updated_at: int | None = None
    purpose: str = "entry"  # entry | exit | take_profit | stop_loss | flatten
    intent_id: str | None = None
    error: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order."""

    mode: Mode
    client_order_id: str
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    timestamp: int
    trade_id: str
    is_maker: bool = False
    intended_price: Decimal | None = None
    slippage_bps: float | None = None
    latency_ms: int | None = None
    # a fee paid in a third currency (BNB), valued in the quote currency at the fill's time,
    # and the price used (fee currency in quote); None when not needed or not known
    fee_quote: Decimal | None = None
    fee_rate: Decimal | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Position:
    """An open (or closed) long position in one symbol.

    ``amount`` is base currency held by the position; ``entry_price`` the fee-exclusive average
    entry price; ``stop_loss``/``take_profit`` are the mental levels checked on every price update.
    """

    mode: Mode
    symbol: str
    amount: Decimal
    entry_price: Decimal
    opened_at: int
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop_pct: Decimal | None = None
    highest_price: Decimal | None = None
    fees_paid: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    closed_at: int | None = None
    exit_price: Decimal | None = None
    exit_reason: str | None = None
    id: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        """True while the position still holds an amount."""
        return self.closed_at is None
