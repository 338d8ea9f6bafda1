"""Emergency flatten: cancel every open order and close every position of the current mode."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from loguru import logger

from kmg_autotrader.exchange.errors import ExchangeAdapterError
from kmg_autotrader.execution.errors import ExecutionError
from kmg_autotrader.execution.manager import ExecutionManager


@dataclass(slots=True)
class FlattenSummary:
    """What a flatten did, for the CLI, the API and the alert."""

    mode: str
    canceled: list[str] = field(default_factory=list)  # our client order ids
    canceled_unknown: list[str] = field(default_factory=list)  # exchange ids we did not know
    closed: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # exit sent, waiting for the market
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.errors

    def lines(self) -> list[str]:
        """A human summary, one line each."""
        out = [
            f"flatten ({self.mode}): {len(self.canceled)} orders cancelled, "
            f"{len(self.closed)} positions closed"
        ]
        if self.canceled_unknown:
            out.append(f"cancelled orders we had no record of: {', '.join(self.canceled_unknown)}")
        if self.pending:
            out.append(f"exits waiting for the market: positions {self.pending}")
        out.extend(f"skipped: {s}" for s in self.skipped)
        out.extend(f"error: {e}" for e in self.errors)
        return out


async def flatten(manager: ExecutionManager, *, symbols: Iterable[str] = ()) -> FlattenSummary:
    """Cancel every open order (ours, and any the exchange lists for the symbols involved) and
    exit every open position at market. Exits are claimed, so a bot running at the same time
    never exits the same position too."""
    store = manager.store
    summary = FlattenSummary(mode=store.mode.value)
    involved = set(symbols)
    for order in store.open_orders():
        involved.add(order.symbol)
        try:
            result = await manager.orders.safe_cancel(order.client_order_id)
            manager.working.pop(order.client_order_id, None)
            summary.canceled.append(result.client_order_id)
        except (ExchangeAdapterError, ExecutionError, KeyError) as exc:
            summary.errors.append(f"cancel {order.client_order_id}: {exc}")
    positions = store.open_positions()
    involved.update(p.symbol for p in positions)
    known = {o.client_order_id for o in store.open_orders()}
    for symbol in sorted(involved):
        try:
            listed = await manager.exchange.fetch_open_orders(symbol)
        except ExchangeAdapterError as exc:
            summary.errors.append(f"list open orders {symbol}: {exc}")
            continue
        for raw in listed:
            coid = str(raw.get("clientOrderId") or "")
            if coid in known:
                continue
            try:
                await manager.exchange.cancel_order(str(raw["id"]), symbol)
                summary.canceled_unknown.append(str(raw["id"]))
            except ExchangeAdapterError as exc:
                summary.errors.append(f"cancel {raw.get('id')}: {exc}")
    for position in positions:
        assert position.id is not None
        try:
            report = await manager.exit_position(position.id, "flatten")
        except (ExchangeAdapterError, ExecutionError) as exc:
            summary.errors.append(f"close position {position.id} {position.symbol}: {exc}")
            continue
        if report.status == "skipped":
            summary.skipped.append(f"position {position.id}: {report.message}")
        elif report.status == "working":
            summary.pending.append(position.id)
        elif report.status in ("filled", "partial"):
            summary.closed.append(position.id)
        else:
            summary.errors.append(f"close position {position.id}: {report.status} {report.message}")
    store.add_event(
        "flatten",
        "; ".join(summary.lines()),
        level="warning" if summary.errors else "info",
        details={"closed": summary.closed, "canceled": summary.canceled},
    )
    logger.warning("{}", " | ".join(summary.lines()))
    return summary
