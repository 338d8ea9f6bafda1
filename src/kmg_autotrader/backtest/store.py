"""The in-memory trading store, with orders indexed by intent for long replays."""

from __future__ import annotations

from kmg_autotrader.domain import Order
from kmg_autotrader.execution import MemoryStore


class BacktestStore(MemoryStore):
    """:class:`~kmg_autotrader.execution.MemoryStore` whose ``orders_for_intent`` is a dict
    look-up instead of a scan of every order (the scan makes a year-long replay quadratic).
    Same behaviour; drop it once ``MemoryStore`` keeps this index itself."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._by_intent: dict[str, list[str]] = {}

    def add_order(self, order: Order, *, position_id: int | None = None) -> None:
        """Record an order and index it by its intent."""
        super().add_order(order, position_id=position_id)
        if order.intent_id is not None:
            self._by_intent.setdefault(order.intent_id, []).append(order.client_order_id)

    def orders_for_intent(self, intent_id: str) -> list[Order]:
        """Every order sent for one intent, oldest first."""
        return [self.orders[c] for c in self._by_intent.get(intent_id, ())]
