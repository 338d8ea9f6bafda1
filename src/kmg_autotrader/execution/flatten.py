"""Emergency flatten: cancel every open order and close every position of the current mode.

Some exchanges answer a market order before it fills, or without saying whether it did (Kraken's
AddOrder returns a txid only). A flatten that runs on its own (``kmg flatten``) then waits for
its exits, bounded (``wait_s``), polling them as the bot's loop would, so that it records their
fills, closes the positions and says what really happened. Inside the bot (``wait_s`` 0) the
loop's own polling finishes them; a backtest must not wait (its market moves between calls).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from loguru import logger

from kmg_autotrader.exchange.errors import ExchangeAdapterError
from kmg_autotrader.execution.book import WORKING
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
    waited_s: float = 0.0  # how long it waited for its exits to fill (0: it did not wait)

    @property
    def ok(self) -> bool:
        """True when nothing failed (an exit still unfilled after the wait counts as failed)."""
        return not self.errors and not (self.pending and self.waited_s)

    def lines(self) -> list[str]:
        """A human summary, one line each."""
        out = [
            f"flatten ({self.mode}): {len(self.canceled)} orders cancelled, "
            f"{len(self.closed)} positions closed"
        ]
        if self.canceled_unknown:
            out.append(f"cancelled orders we had no record of: {', '.join(self.canceled_unknown)}")
        if self.pending and self.waited_s:
            out.append(
                f"exits sent but not filled after {self.waited_s:.0f} s: positions "
                f"{self.pending} stay open here until the next `kmg run` records their fills"
            )
        elif self.pending:
            out.append(f"exits waiting for the market: positions {self.pending}")
        out.extend(f"skipped: {s}" for s in self.skipped)
        out.extend(f"error: {e}" for e in self.errors)
        return out


async def flatten(
    manager: ExecutionManager,
    *,
    symbols: Iterable[str] = (),
    wait_s: float = 0.0,
    poll_s: float = 1.0,
) -> FlattenSummary:
    """Cancel every open order (ours, and any the exchange lists for the symbols involved) and
    exit every open position at market. Exits are claimed, so a bot running at the same time
    never exits the same position too.

    ``wait_s`` > 0: wait up to that many seconds (wall time) for exits the exchange has not
    filled yet, polling them every ``poll_s``; their fills are recorded and their positions
    closed as they fill. Exits still unfilled then stay ``pending`` (and the flatten not ok).
    """
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
    exits: dict[int, str] = {}  # position id → client id of its exit still working
    for position in positions:
        assert position.id is not None
        try:
            report = await manager.exit_position(position.id, "flatten", force=True)
        except (ExchangeAdapterError, ExecutionError) as exc:
            summary.errors.append(f"close position {position.id} {position.symbol}: {exc}")
            continue
        if report.status == "skipped":
            summary.skipped.append(f"position {position.id}: {report.message}")
        elif report.status == "working":
            summary.pending.append(position.id)
            if report.orders:
                exits[position.id] = report.orders[-1].client_order_id
        elif report.status in ("filled", "partial"):
            _settled(manager, summary, position.id, report.status)
        else:
            summary.errors.append(f"close position {position.id}: {report.status} {report.message}")
    if summary.pending and wait_s > 0:
        await _wait_for_exits(manager, summary, exits, wait_s, poll_s)
    store.add_event(
        "flatten",
        "; ".join(summary.lines()),
        level="warning" if summary.errors else "info",
        details={"closed": summary.closed, "canceled": summary.canceled},
    )
    logger.warning("{}", " | ".join(summary.lines()))
    return summary


def _settled(
    manager: ExecutionManager, summary: FlattenSummary, position_id: int, how: str
) -> None:
    """File a position whose exit ended: closed, or an error saying what is left open."""
    position = manager.store.get_position(position_id)
    if position is None or position.closed_at is not None:
        summary.closed.append(position_id)
    else:  # e.g. an exit cancelled or expired part-filled: never call that closed
        summary.errors.append(
            f"close position {position_id}: exit {how}, {position.amount} {position.symbol} "
            "still held"
        )


async def _wait_for_exits(
    manager: ExecutionManager,
    summary: FlattenSummary,
    exits: dict[int, str],
    wait_s: float,
    poll_s: float,
) -> None:
    """Poll the working exits until each has ended or ``wait_s`` has passed."""
    started = time.monotonic()
    deadline = started + wait_s
    logger.info("flatten: waiting up to {} s for exits of positions {}", wait_s, summary.pending)
    while True:
        await manager.poll()  # syncs every working order: records fills, closes positions
        for position_id in list(summary.pending):
            coid = exits.get(position_id)
            order = manager.store.get_order(coid) if coid else None
            if order is not None and order.status in WORKING:
                continue  # still waiting for the market (or unresolved)
            summary.pending.remove(position_id)
            _settled(manager, summary, position_id, order.status.value if order else "ended")
        left = deadline - time.monotonic()
        if not summary.pending or left <= 0:
            break
        await asyncio.sleep(min(poll_s, left))
    summary.waited_s = time.monotonic() - started
