"""An in-memory :class:`~kmg_autotrader.execution.ports.TradingStore` for backtests and tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from kmg_autotrader.domain import Fill, Mode, Order, OrderStatus, Position

_OPEN = frozenset(  # the statuses that are not ``is_terminal``: the order may still fill
    {
        OrderStatus.PENDING,
        OrderStatus.OPEN,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.UNRESOLVED,
    }
)
_ORDER_NAMES = tuple(f.name for f in dataclasses.fields(Order))
_POSITION_NAMES = tuple(f.name for f in dataclasses.fields(Position))
_T = TypeVar("_T", Order, Position)


def _replacer(cls: type[_T]) -> Callable[[_T, Mapping[str, Any]], _T]:
    """A fast ``dataclasses.replace(obj, **values)`` for :class:`Order` or :class:`Position`.

    Both are frozen, slotted dataclasses whose fields are all ``init`` fields, with no
    ``__post_init__``: ``replace`` would pass every field to ``__init__``, which only stores
    them. The function made here stores them directly into a new instance, one generated line
    per field (as ``dataclasses`` makes ``__init__``); keys of ``values`` that are not fields
    are ignored. The in-memory store replaces an order or a position on every update, so:

    * each field is stored through its slot's own descriptor (``Order.amount.__set__``), which
      costs about half of ``object.__setattr__`` (the way ``__init__`` stores them);
    * a function is generated per set of keys an update passes (a handful: the updates the
      bot makes), so it reads each field from ``values`` or ``obj`` without testing ``in``.
    """
    names = tuple(field.name for field in dataclasses.fields(cls))
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    for name in names:  # identifiers: safe to paste into the source
        namespace[f"_set_{name}"] = getattr(cls, name).__set__  # the slot's member descriptor
    made: dict[tuple[str, ...], Callable[[_T, Mapping[str, Any]], _T]] = {}
    label = f"replaced_{cls.__name__.lower()}"

    def make(keys: tuple[str, ...]) -> Callable[[_T, Mapping[str, Any]], _T]:
        lines = [f"def {label}(obj, values):", "    new = _new(_cls)"]
        for name in names:
            source = f"values[{name!r}]" if name in keys else f"obj.{name}"
            lines.append(f"    _set_{name}(new, {source})")
        lines.append("    return new")
        scope = dict(namespace)
        exec("\n".join(lines), scope)  # source made of field names only
        function: Callable[[_T, Mapping[str, Any]], _T] = scope[label]
        return function

    def replaced(obj: _T, values: Mapping[str, Any]) -> _T:
        keys = tuple(values)
        function = made.get(keys)
        if function is None:
            function = made[keys] = make(keys)
        return function(obj, values)

    replaced.__qualname__ = replaced.__name__ = label
    return replaced


_replace_order = _replacer(Order)
_replace_position = _replacer(Position)


class MemoryStore:
    """Orders, fills, positions and events held in dicts (one process, no I/O)."""

    def __init__(self, mode: Mode = Mode.PAPER) -> None:
        self.mode = Mode(mode)
        self.orders: dict[str, Order] = {}
        self.order_position: dict[str, int | None] = {}
        self.position_orders: dict[int, list[str]] = {}  # index: a backtest has many positions
        self._intent_orders: dict[str, list[str]] = {}  # index: every execute looks an intent up
        self.fills: dict[str, list[Fill]] = {}
        self._fill_keys: set[tuple[str, str]] = set()
        self.positions: dict[int, Position] = {}
        self.exiting: set[int] = set()
        self._open_by_symbol: dict[str, dict[int, None]] = {}  # index: checked every candle
        self.events: list[dict[str, Any]] = []
        self._next_position = 0
        self._figures_versions: dict[int, int] = {}  # see figures_version

    def figures_version(self, position_id: int) -> int:
        """Changes whenever what the position's figures are computed from changes: a fill of
        one of its orders is stored, an order is linked to it or unlinked (unless it is a
        working order without fills: it adds nothing and only keeps the position open), or one
        of its orders stops working (see :class:`~.ports.FiguresVersioned`)."""
        return self._figures_versions.get(position_id, 0)

    def _touch(self, position_id: int | None) -> None:
        if position_id is not None:
            self._figures_versions[position_id] = self._figures_versions.get(position_id, 0) + 1

    def add_order(self, order: Order, *, position_id: int | None = None) -> None:
        """Record an order; a duplicate client id raises ``ValueError``."""
        if order.client_order_id in self.orders:
            raise ValueError(f"order {order.client_order_id} already exists")
        self.orders[order.client_order_id] = order
        self._link(order.client_order_id, position_id)
        if order.status not in _OPEN or order.client_order_id in self.fills:
            self._touch(position_id)
        if order.intent_id is not None:
            self._intent_orders.setdefault(order.intent_id, []).append(order.client_order_id)

    def _link(self, client_order_id: str, position_id: int | None) -> None:
        old = self.order_position.get(client_order_id)
        if old is not None and client_order_id in self.position_orders.get(old, []):
            self.position_orders[old].remove(client_order_id)
        self.order_position[client_order_id] = position_id
        if position_id is not None:
            self.position_orders.setdefault(position_id, []).append(client_order_id)

    def get_order(self, client_order_id: str) -> Order | None:
        """One order by client id."""
        return self.orders.get(client_order_id)

    def update_order(self, client_order_id: str, **fields: Any) -> None:
        """Update fields of one order (``position_id`` links it to a position)."""
        old = self.orders.get(client_order_id)
        if old is None:
            raise KeyError(f"no {self.mode} order {client_order_id}")
        if "position_id" in fields:
            position_id = fields.pop("position_id")
            self._touch(self.order_position.get(client_order_id))
            self._link(client_order_id, position_id)
            self._touch(position_id)
        if "status" in fields:
            status = fields["status"]
            if type(status) is not OrderStatus:
                status = fields["status"] = OrderStatus(status)
            if old.status in _OPEN and status not in _OPEN:  # stopped working
                self._touch(self.order_position.get(client_order_id))
        self.orders[client_order_id] = _replace_order(old, fields)  # other keys are ignored
        if "intent_id" in fields and fields["intent_id"] != old.intent_id:
            self._index_intents()

    def _index_intents(self) -> None:
        """Rebuild the intent index in the order the orders were added (after an order's
        intent changed, which nothing in the bot does)."""
        self._intent_orders = {}
        for coid, order in self.orders.items():
            if order.intent_id is not None:
                self._intent_orders.setdefault(order.intent_id, []).append(coid)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders that may still fill."""
        return [
            o
            for o in self.orders.values()
            if o.status in _OPEN and (symbol is None or o.symbol == symbol)
        ]

    def orders_for_intent(self, intent_id: str) -> list[Order]:
        """Every order of one intent, in the order they were added."""
        coids = self._intent_orders.get(intent_id)
        if not coids:  # the usual answer for a new intent: no comprehension (a call) to run
            return []
        return [self.orders[coid] for coid in coids]

    def orders_for_position(self, position_id: int) -> list[Order]:
        """Every order linked to one position."""
        return [self.orders[coid] for coid in self.position_orders.get(position_id, [])]

    def order_position_id(self, client_order_id: str) -> int | None:
        """The position of an order."""
        return self.order_position.get(client_order_id)

    def known_exchange_ids(self, exchange_order_ids: Iterable[str]) -> set[str]:
        """Which of these exchange order ids are ids of our orders (a scan: asked only after
        an ambiguous create)."""
        wanted = set(exchange_order_ids)
        return {
            eid
            for o in self.orders.values()
            if (eid := o.exchange_order_id) is not None and eid in wanted
        }

    def add_fill(self, fill: Fill) -> bool:
        """Store a fill once."""
        key = (fill.client_order_id, fill.trade_id)
        if key in self._fill_keys:
            return False
        self._fill_keys.add(key)
        self.fills.setdefault(fill.client_order_id, []).append(fill)
        self._touch(self.order_position.get(fill.client_order_id))
        return True

    def fills_for_order(self, client_order_id: str) -> list[Fill]:
        """Fills of one order, oldest first."""
        return list(self.fills.get(client_order_id, ()))

    def open_position(self, position: Position) -> int:
        """Store a new position; return its id."""
        self._next_position += 1
        pid = self._next_position
        self.positions[pid] = _replace_position(position, {"id": pid})
        if position.closed_at is None:
            self._open_by_symbol.setdefault(position.symbol, {})[pid] = None
        return pid

    def get_position(self, position_id: int) -> Position | None:
        """One position."""
        return self.positions.get(position_id)

    def open_positions(self, symbol: str | None = None) -> list[Position]:
        """Positions not closed yet."""
        if symbol is not None:
            ids = self._open_by_symbol.get(symbol)
            if not ids:  # the usual answer of a per-candle check
                return []
            positions = self.positions
            return [positions[pid] for pid in ids]
        return [self.positions[pid] for ids in self._open_by_symbol.values() for pid in ids]

    def update_position(self, position_id: int, **fields: Any) -> None:
        """Update fields of one position."""
        if position_id not in self.positions:
            raise KeyError(f"no {self.mode} position {position_id}")
        if fields.pop("exiting", None) is False:
            self.exiting.discard(position_id)
        updated = _replace_position(self.positions[position_id], fields)  # others are ignored
        self.positions[position_id] = updated
        if updated.closed_at is not None:
            self._open_by_symbol.get(updated.symbol, {}).pop(position_id, None)

    def claim_exit(self, position_id: int) -> bool:
        """True for the first claimant of an open position."""
        position = self.positions.get(position_id)
        if position is None or position.closed_at is not None or position_id in self.exiting:
            return False
        self.exiting.add(position_id)
        return True

    def release_exit(self, position_id: int) -> None:
        """Give up an exit claim."""
        self.exiting.discard(position_id)

    def is_exiting(self, position_id: int) -> bool:
        """True while an exit claim is held."""
        return position_id in self.exiting

    def close_position(
        self,
        position_id: int,
        *,
        closed_at: int,
        exit_price: Decimal,
        exit_reason: str,
        realized_pnl: Decimal,
        fees_paid: Decimal,
        amount: Decimal | None = None,
    ) -> None:
        """Mark a position closed (``amount``, when given, is its closed size)."""
        sized = {} if amount is None else {"amount": amount}
        self.update_position(
            position_id,
            **sized,
            closed_at=closed_at,
            exit_price=exit_price,
            exit_reason=exit_reason,
            realized_pnl=realized_pnl,
            fees_paid=fees_paid,
        )
        self.exiting.discard(position_id)

    def add_event(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Keep an event in memory."""
        self.events.append({"kind": kind, "message": message, "level": level, **(details or {})})
