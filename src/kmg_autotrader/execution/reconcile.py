"""Reconciliation: our records against the exchange (or the paper ledger), both ways.

Run at start, every few minutes, and after any ambiguous error. It adopts fills that happened
while we were not looking, resolves UNRESOLVED orders from what the exchange says, marks orders
the exchange does not know as LOST once that is proven (``lost_after`` "not found" answers in a
row spanning at least ``lost_window_ms``, and no trade of the account since the order was sent
that could be it: an exchange may show a new order late, and a LOST order's fills would never
be recorded), and *reports* (never acts on) orders and
balances we did not expect. It never sends an order. Invariants checked every pass: for every
order looked at, the stored fills sum to the exchange's filled amount, average price and fee;
every open position's amount equals the sum of its fills.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from decimal import Decimal

from loguru import logger

from kmg_autotrader.domain import Order, OrderStatus
from kmg_autotrader.exchange.errors import ExchangeAdapterError, TransientExchangeError
from kmg_autotrader.execution.book import OPENING
from kmg_autotrader.execution.manager import ExecutionManager
from kmg_autotrader.execution.ports import OrderDict, dec, to_decimal

TOLERANCE = Decimal("1e-9")  # relative; exchanges round averages they report


@dataclass(slots=True)
class ReconciliationReport:
    """Findings of one pass."""

    checked_orders: int = 0
    adopted_fills: int = 0
    resolved: list[str] = field(default_factory=list)  # unresolved → known state
    lost: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)  # not known yet, not LOST yet
    unreachable: list[str] = field(default_factory=list)  # could not ask the exchange
    unexpected_orders: list[str] = field(default_factory=list)
    balance_findings: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things fixed on the way (stale claims)

    @property
    def clean(self) -> bool:
        """True when nothing needs a human."""
        return not (self.lost or self.unexpected_orders or self.violations or self.balance_findings)

    def lines(self) -> list[str]:
        """A human summary."""
        out = [
            f"reconciled {self.checked_orders} orders, adopted {self.adopted_fills} fills, "
            f"resolved {len(self.resolved)}, lost {len(self.lost)}"
        ]
        out.extend(f"unexpected order: {o}" for o in self.unexpected_orders)
        out.extend(f"balance: {b}" for b in self.balance_findings)
        out.extend(f"invariant: {v}" for v in self.violations)
        out.extend(f"unreachable: {u}" for u in self.unreachable)
        out.extend(f"note: {n}" for n in self.notes)
        return out


def _close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= TOLERANCE * max(abs(a), abs(b), Decimal(1))


class Reconciler:
    """Compares one store with one exchange; ``lost_after`` not-found answers over at least
    ``lost_window_ms`` (of the manager's clock), with no unexplained trade since the order was
    sent, make an order LOST (proven never placed; it is not re-sent)."""

    def __init__(
        self,
        manager: ExecutionManager,
        *,
        symbols: tuple[str, ...] = (),
        lost_after: int = 3,
        lost_window_ms: int = 60_000,
        quote: str | None = None,
        stale_claim_ms: int = 600_000,
    ) -> None:
        self.manager = manager
        self.store = manager.store
        self.exchange = manager.exchange
        self.symbols = symbols
        self.lost_after = lost_after
        self.lost_window_ms = lost_window_ms
        self.quote = quote
        self.stale_claim_ms = stale_claim_ms
        self._not_found: dict[str, tuple[int, int]] = {}  # coid → (answers, first answer ms)
        self._wake = asyncio.Event()
        manager.orders.unresolved_listeners.append(lambda _coid: self.request())

    def request(self) -> None:
        """Ask for a pass as soon as possible (after an ambiguous error)."""
        self._wake.set()

    async def run_forever(self, interval_s: float = 180.0, retry_s: float = 3.0) -> None:
        """Reconcile now, then every ``interval_s`` or when :meth:`request` is called; while
        an order is not found (not yet proven lost), again after ``retry_s``: the proof needs
        several passes, and a process restarted within ``interval_s`` (its counts are in
        memory) would otherwise never complete it, leaving the symbol blocked."""
        while True:
            wait = interval_s
            try:
                report = await self.run()
                if not report.clean:
                    logger.warning("reconciliation: {}", " | ".join(report.lines()))
                if report.not_found:
                    wait = min(interval_s, retry_s)
            except Exception as exc:  # the loop must survive any single bad pass
                logger.exception("reconciliation pass failed: {}", exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def run(self) -> ReconciliationReport:
        """One pass in both directions."""
        report = ReconciliationReport()
        symbols = set(self.symbols)
        for order in self.store.open_orders():
            symbols.add(order.symbol)
            await self._order(order, report)
        for position in self.store.open_positions():
            symbols.add(position.symbol)
            self._position(position.id or 0, position.symbol, report)
        await self._unexpected_orders(sorted(symbols), report)
        await self._balances(report)
        if not report.clean:
            self.store.add_event(
                "reconciliation",
                "; ".join(report.lines())[:2000],
                level="warning",
                details={"lost": report.lost, "violations": report.violations},
            )
        return report

    async def _order(self, order: Order, report: ReconciliationReport) -> None:
        coid = order.client_order_id
        report.checked_orders += 1
        try:
            raw = await self.manager.orders.lookup(coid, order.symbol)
        except TransientExchangeError as exc:
            report.unreachable.append(f"{coid}: {exc}")
            return
        if raw is None:
            now = self.manager.clock.now_ms()
            count, first = self._not_found.get(coid, (0, now))
            count += 1
            self._not_found[coid] = (count, first)
            if count < self.lost_after or now - first < self.lost_window_ms:
                report.not_found.append(coid)
                return
            try:
                unexplained = await self.manager.orders.unexplained_trades(order)
            except ExchangeAdapterError as exc:
                report.unreachable.append(f"{coid} trades: {exc}")
                return
            if unexplained:  # it may have been placed and filled: never call it lost
                report.not_found.append(coid)
                report.notes.append(
                    f"{coid}: not found {count} times, but {len(unexplained)} trade(s) since "
                    "it was sent belong to no order we know; not marked lost"
                )
                return
            self.store.update_order(
                coid,
                status=OrderStatus.LOST,
                error=f"exchange did not know it {count} times in {(now - first) // 1000} s",
            )
            self._not_found.pop(coid, None)
            report.lost.append(coid)
            position_id = self.store.order_position_id(coid)
            if position_id is not None:
                self._position(position_id, order.symbol, report)
            return
        self._not_found.pop(coid, None)
        before = len(self.store.fills_for_order(coid))
        try:
            updated = await self.manager.orders.sync(coid, raw)
        except ExchangeAdapterError as exc:
            report.unreachable.append(f"{coid}: {exc}")
            return
        report.adopted_fills += len(self.store.fills_for_order(coid)) - before
        if order.status is OrderStatus.UNRESOLVED and updated.status is not OrderStatus.UNRESOLVED:
            report.resolved.append(coid)
        # still working and nobody watching it (e.g. a limit entry resolved as resting): the
        # manager times it out, finishes the entry, brackets it; never left "opening"
        if coid not in self.manager.working and self.manager.adopt(updated):
            report.notes.append(f"{coid}: working on the exchange, now watched")
        self._check_order(coid, raw, report)

    def _check_order(self, coid: str, raw: OrderDict, report: ReconciliationReport) -> None:
        fills = self.store.fills_for_order(coid)
        filled = sum((f.amount for f in fills), Decimal(0))
        if not _close(filled, dec(raw.get("filled"))):
            report.violations.append(
                f"{coid}: stored fills sum to {filled}, exchange says {raw.get('filled')}"
            )
            return
        average = to_decimal(raw.get("average"))
        if filled and average is not None:
            ours = sum((f.amount * f.price for f in fills), Decimal(0)) / filled
            if not _close(ours, average):
                report.violations.append(f"{coid}: average {ours} vs exchange {average}")
        fee = to_decimal((raw.get("fee") or {}).get("cost"))
        if fee is not None:
            ours_fee = sum((f.fee for f in fills), Decimal(0))
            if not _close(ours_fee, fee):
                report.violations.append(f"{coid}: fees {ours_fee} vs exchange {fee}")

    def _position(self, position_id: int, symbol: str, report: ReconciliationReport) -> None:
        market = self.exchange.market(symbol)
        stored = self.store.get_position(position_id)
        if stored is None:
            return
        figures = self.manager.orders.book.figures(position_id, market)
        if stored.closed_at is None and stored.amount != figures.amount:
            report.violations.append(
                f"position {position_id}: stored {stored.amount}, fills say {figures.amount} "
                "(corrected)"
            )
        book, now = self.manager.orders.book, self.manager.clock.now_ms()
        if stored.closed_at is None and self.store.is_exiting(position_id):
            self._stale_claim(position_id, stored.extra, now, report)
        working = {w.position_id for w in self.manager.working.values()}
        if stored.extra.get("state") == OPENING and position_id not in working:
            book.finish_entry(position_id, market, now)  # an entry orphaned by a restart
        else:
            book.refresh(position_id, market, now)

    def _stale_claim(
        self, position_id: int, extra: dict[str, str], now: int, report: ReconciliationReport
    ) -> None:
        """Release an exit claim whose holder died before sending its exit order."""
        working = [
            o for o in self.store.orders_for_position(position_id) if not o.status.is_terminal
        ]
        claimed_at = int(extra.get("exit_claimed_at", "0") or 0)
        if working or now - claimed_at < self.stale_claim_ms:
            return
        self.store.release_exit(position_id)
        report.notes.append(
            f"position {position_id}: stale exit claim released (no exit order was working)"
        )

    async def _unexpected_orders(self, symbols: list[str], report: ReconciliationReport) -> None:
        for symbol in symbols:
            try:
                listed = await self.exchange.fetch_open_orders(symbol)
            except ExchangeAdapterError as exc:
                report.unreachable.append(f"open orders {symbol}: {exc}")
                continue
            for raw in listed:
                coid = raw.get("clientOrderId")
                if not coid or self.store.get_order(str(coid)) is None:
                    report.unexpected_orders.append(
                        f"{symbol} {raw.get('side')} {raw.get('amount')} @ {raw.get('price')} "
                        f"(id {raw.get('id')}, client id {coid})"
                    )

    async def _balances(self, report: ReconciliationReport) -> None:
        positions = self.store.open_positions()
        held: dict[str, Decimal] = {}
        for position in positions:
            base = self.exchange.market(position.symbol).base
            held[base] = held.get(base, Decimal(0)) + position.amount
        bases = set(held) | {self.exchange.market(s).base for s in self.symbols}
        if not bases:
            return
        try:
            balance = await self.exchange.fetch_balance()
        except ExchangeAdapterError as exc:
            report.unreachable.append(f"balance: {exc}")
            return
        totals = balance.get("total") or {}
        for currency in sorted(bases):
            have = dec(totals.get(currency))
            want = held.get(currency, Decimal(0))
            step = min(
                (
                    self.exchange.market(p.symbol).amount_step
                    for p in positions
                    if self.exchange.market(p.symbol).base == currency
                ),
                default=Decimal(0),
            )
            if have + step < want:
                report.balance_findings.append(
                    f"positions hold {want} {currency} but the exchange shows {have}"
                )
            elif have > want + step and want > 0:
                report.balance_findings.append(
                    f"exchange holds {have} {currency}, positions only {want} (not ours?)"
                )
