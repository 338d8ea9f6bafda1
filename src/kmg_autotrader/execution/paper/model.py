"""Orders and trades as the paper exchange keeps them, and their ccxt-shaped views."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

OPEN = "open"
CLOSED = "closed"
CANCELED = "canceled"
EXPIRED = "expired"
_ZERO = Decimal(0)


@dataclass(slots=True)
class PaperTrade:
    """One simulated execution. Fees are charged in the quote currency."""

    id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    timestamp: int
    is_maker: bool

    def to_ccxt(self) -> dict[str, Any]:
        """ccxt's unified trade structure."""
        return {
            "id": self.id,
            "order": self.order_id,
            "clientOrderId": self.client_order_id,
            "timestamp": self.timestamp,
            "symbol": self.symbol,
            "side": self.side,
            "type": None,
            "takerOrMaker": "maker" if self.is_maker else "taker",
            "price": self.price,
            "amount": self.amount,
            "cost": self.amount * self.price,
            "fee": {"cost": self.fee, "currency": self.fee_currency},
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (Decimals as text)."""
        # field by field, not asdict (which deep-copies every value): the book is saved whole
        # on every order and fill, thousands of these
        return {
            k: (str(v) if isinstance(v, Decimal) else v)
            for k, v in ((f, getattr(self, f)) for f in _TRADE_FIELDS)
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PaperTrade:
        """Inverse of :meth:`to_json`."""
        values = dict(data)
        for key in ("amount", "price", "fee"):
            values[key] = Decimal(values[key])
        return cls(**values)


@dataclass(slots=True)
class PaperOrder:
    """One simulated order. ``reserved`` is what it still holds in ``used`` balance."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    amount: Decimal
    price: Decimal | None
    post_only: bool
    status: str
    timestamp: int
    updated_at: int
    fee_currency: str
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    reason: str | None = None
    trade_ids: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        """Amount not filled yet."""
        return self.amount - self.filled

    def to_ccxt(self, trades: list[dict[str, Any]]) -> dict[str, Any]:
        """ccxt's unified order structure (with its trades)."""
        return {
            "id": self.id,
            "clientOrderId": self.client_order_id,
            "timestamp": self.timestamp,
            "lastTradeTimestamp": trades[-1]["timestamp"] if trades else None,
            "lastUpdateTimestamp": self.updated_at,
            "symbol": self.symbol,
            "type": self.type,
            "side": self.side,
            "postOnly": self.post_only,
            "price": self.price,
            "amount": self.amount,
            "filled": self.filled,
            "remaining": self.amount - self.filled if self.status == OPEN else _ZERO,
            "cost": self.cost,
            "average": (self.cost / self.filled) if self.filled else None,
            "status": self.status,
            "fee": {"cost": self.fee, "currency": self.fee_currency},
            "trades": trades,
            "info": {"reason": self.reason} if self.reason else {},
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (Decimals as text)."""
        out: dict[str, Any] = {}
        for key in _ORDER_FIELDS:  # (not asdict: see PaperTrade.to_json)
            value = getattr(self, key)
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, list):
                value = list(value)
            out[key] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PaperOrder:
        """Inverse of :meth:`to_json`."""
        values = dict(data)
        for key in ("amount", "filled", "cost", "fee", "reserved"):
            values[key] = Decimal(values[key])
        values["price"] = Decimal(values["price"]) if values.get("price") is not None else None
        values["trade_ids"] = list(values.get("trade_ids") or [])
        return cls(**values)


_TRADE_FIELDS = tuple(f.name for f in fields(PaperTrade))
_ORDER_FIELDS = tuple(f.name for f in fields(PaperOrder))
