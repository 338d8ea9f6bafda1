"""R1: randomized faults during order placement → 0 duplicate orders at the venue.

The bot's real LIVE order path (:class:`ExecutionManager` → :class:`OrderClient` →
:class:`CcxtExchange` → :class:`ExchangeAdapter` → a real ccxt ``binance``/``kraken`` class,
pointed at the venue exactly as ``EXCHANGE_API_URL`` does, recording in a real SQLite or
PostgreSQL database) places market and limit entries and exits on an in-process local venue
(:mod:`kmg_autotrader.venue`) while the venue injects seeded random faults on order creation,
order look-ups, cancels, order lists and trade lists: a timeout after the order was accepted
(connection dropped, or the answer held back past the client's timeout), "not found" for the
first 1-6 look-ups of an order that exists (and may have filled), 429 and 418 with Retry-After,
500/502/503/504, latency and partial fills.

After every cycle (an entry, its take-profit if any, its exit, then a reconciliation pass as the
bot runs it) the venue's books, the truth, are compared with our database:

* at most one venue order per client order id, no venue order our database does not know, and
  no intent filled beyond its amount (else: duplicate orders);
* every order our database calls filled is filled at the venue with the same amount, and the
  fills we stored for each order are exactly the venue's trades of it (else: lost fills).

Run::

    python benchmarks/reliability_r1.py --faults 1000 --seed 7            # both exchanges
    python benchmarks/reliability_r1.py --faults 100 --seed 3 --exchange kraken

It prints ``R1: N faults injected, M orders, D duplicate orders, L lost fills`` (one line per
exchange, then the total) and exits 1 on any duplicate order, lost fill or broken invariant.
The test suite runs a short seeded version (``tests/reliability/test_r1_order_faults.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger

from kmg_autotrader.domain import (
    ExecutionMode,
    Mode,
    Order,
    OrderIntent,
    OrderStatus,
    Side,
)
from kmg_autotrader.exchange import ExchangeAdapter, RetryPolicy
from kmg_autotrader.execution.ccxt_orders import CcxtExchange
from kmg_autotrader.execution.manager import ExecutionConfig, ExecutionManager
from kmg_autotrader.execution.orders import RetrySettings
from kmg_autotrader.execution.rate_limit import RateLimiter, RateSpec
from kmg_autotrader.execution.reconcile import Reconciler
from kmg_autotrader.execution.store_db import RepositoryStore
from kmg_autotrader.execution.tracker import PositionTracker
from kmg_autotrader.sample_data import load_sample_set
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.venue import AccountSpec, Fault, FaultPlan, Venue

EXCHANGES = ("binance", "kraken")
SYMBOL = "BTC/USDT"
API_KEY = "r1-venue-key"
SECRET = base64.b64encode(b"r1-venue-secret-of-64-bytes".ljust(64, b".")).decode()
START_MS = 1_893_456_150_000  # 2030-01-01 00:02:30 UTC: a fixed venue time, fixed prices
CLIENT_TIMEOUT_MS = 500  # ccxt's timeout: a held-back answer (late_answer) exceeds it
LATE_ANSWER_S = 0.6
# the bot's limiter, with loopback rates (100 calls/s of each kind, not 10-20) and a back-off
# without a Retry-After from 0.2 s (not 1 s), so that a thousand faults run in minutes; every
# Retry-After the venue sends is honoured as in the bot
BASE_BACKOFF_S = 0.2
LOOPBACK_RATES = {kind: RateSpec(100, 1.0) for kind in ("order", "query", "market_data")}
# quick retries (the venue answers on loopback; the defaults are for a real exchange)
# (the absence proof's look-ups count answers: the venue hides an order for a number of
# look-ups, not a time, so its window is short here)
RETRY = RetrySettings(
    create_attempts=3, lookup_attempts=4, initial_wait=0.05, max_wait=0.4, absent_window_s=0.05
)
ADAPTER_RETRY = RetryPolicy(attempts=4, initial_wait=0.05, max_wait=0.4)
_SETTLE_STEPS = 40


class VenueTime:
    """The bot's clock: the venue's time (as ``run_live``'s injectable clock), so limit
    timeouts and time windows run on the time the harness moves."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue

    def now_ms(self) -> int:
        """Venue time in UTC epoch ms."""
        return int(self.venue.clock.now_ms())


@dataclass
class R1Result:
    """Figures of one run on one exchange."""

    exchange: str
    seed: int
    faults: int = 0
    orders: int = 0
    duplicates: int = 0
    lost_fills: int = 0
    cycles: int = 0
    seconds: float = 0.0
    fault_counts: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No duplicate, no lost fill, no broken invariant."""
        return not (self.duplicates or self.lost_fills or self.problems)

    def line(self, label: str = "R1") -> str:
        """The figure line."""
        return (
            f"{label}: {self.faults} faults injected, {self.orders} orders, "
            f"{self.duplicates} duplicate orders, {self.lost_fills} lost fills"
        )


def _fault_menu(endpoint: str) -> list[tuple[str, int]]:
    menu = [("latency", 3), ("rate_limit", 2), ("server_error", 3), ("ban", 1)]
    if endpoint == "create_order":
        menu += [("timeout_after_accept", 6), ("not_found", 4), ("partial_fill", 2)]
    return menu


_ENDPOINTS = [
    ("create_order", 10),
    ("fetch_order", 4),
    ("cancel_order", 2),
    ("my_trades", 2),
    ("open_orders", 2),
]


def random_faults(rng: random.Random) -> list[Fault]:
    """One seeded fault on an order endpoint; one time in six a create whose answer is lost
    *and* whose order then hides from the first look-ups (two faults on one request)."""
    if rng.random() < 1 / 6:
        after = rng.choice((0, 0, 1))
        hidden = Fault(kind="not_found", endpoint="create_order", after=after)
        hidden.lookups = rng.randint(1, 6)
        lost = Fault(kind="timeout_after_accept", endpoint="create_order", after=after)
        return [hidden, lost]
    return [random_fault(rng)]


def random_fault(rng: random.Random) -> Fault:
    """One seeded fault on an order endpoint."""
    names, weights = zip(*_ENDPOINTS, strict=True)
    endpoint = rng.choices(names, weights)[0]
    kinds, kind_weights = zip(*_fault_menu(endpoint), strict=True)
    kind = rng.choices(kinds, kind_weights)[0]
    fault = Fault(kind=kind, endpoint=endpoint, after=rng.choice((0, 0, 0, 1, 2)))
    if kind == "latency":
        fault.delay = round(rng.uniform(0.02, 0.25), 3)
    elif kind in ("rate_limit", "ban"):
        # Retry-After 1 s (a scripted ban answers every request 418 for that long) or 0 (the
        # limiter's own back-off; a ban of this one request)
        fault.retry_after = rng.choice((0, 0, 1))
    elif kind == "server_error":
        fault.status = rng.choice((500, 502, 503, 504))
    elif kind == "timeout_after_accept":
        fault.delay = LATE_ANSWER_S if rng.random() < 0.15 else 0.0
    elif kind == "not_found":
        fault.lookups = rng.randint(1, 6)
    elif kind == "partial_fill":
        fault.fraction = rng.choice((0.25, 0.5, 0.75))
    return fault


class Harness:
    """One venue, one database, the bot's order path, and the checks."""

    def __init__(
        self,
        exchange: str,
        seed: int,
        database_url: str,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.exchange = exchange
        self.rng = random.Random(f"r1:{exchange}:{seed}")
        self.result = R1Result(exchange, seed)
        self.progress = progress
        self.venue = Venue(
            exchange,
            load_sample_set("btc-usdt"),
            speed=0,
            warmup=200,
            accounts=[AccountSpec(API_KEY, SECRET, {"USDT": Decimal(10_000_000)})],
            faults=FaultPlan(),
            start_ms=START_MS,
        )
        self.database = open_database(database_url)
        self.store = RepositoryStore(Repositories(self.database), Mode.LIVE)
        self.adapter: ExchangeAdapter | None = None
        self.positions: list[int] = []
        self.intents: dict[str, Decimal] = {}  # intent key → amount
        self._seen: set[str] = set()  # problems already counted
        self.coids: set[str] = set()  # client ids of every order we recorded so far

    # ---- set-up -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the venue and build the bot's order path on it."""
        await self.venue.start(0)
        self.adapter = ExchangeAdapter(
            self.exchange,
            api_key=API_KEY,
            secret=SECRET,
            api_url=self.venue.base_url,
            # ccxt's own limiter stays on; its delay is shortened for a loopback venue
            config={"timeout": CLIENT_TIMEOUT_MS, "rateLimit": 1},
            retry=ADAPTER_RETRY,
        )
        await self.adapter.load_markets()
        self.ccxt = CcxtExchange(
            self.adapter,
            limiter=RateLimiter(self.exchange, LOOPBACK_RATES, base_backoff=BASE_BACKOFF_S),
        )
        self.clock = VenueTime(self.venue)
        self.configs = {
            "market": ExecutionConfig(execution_mode=ExecutionMode.MARKET_ONLY, retry=RETRY),
            "limit": ExecutionConfig(
                execution_mode=ExecutionMode.LIMIT_BRACKET,
                limit_timeout_ms=2 * self.venue.market.step_ms,
                max_reprices=1,
                market_fallback=True,
                retry=RETRY,
            ),
        }
        self.manager = ExecutionManager(
            self.ccxt, self.store, clock=self.clock, config=self.configs["market"]
        )
        self.tracker = PositionTracker(self.manager, tp_sync_interval_ms=0)
        self.reconciler = Reconciler(self.manager, symbols=(SYMBOL,))

    async def stop(self) -> None:
        """Close the client, the venue and the database."""
        if self.adapter is not None:
            await self.adapter.close()
        await self.venue.stop()
        self.database.dispose()

    # ---- one cycle --------------------------------------------------------------------------

    def _queue_faults(self, count: int) -> None:
        for _ in range(count):
            for fault in random_faults(self.rng):
                self.venue.faults.add(fault)

    def _faults_fired(self) -> int:
        return int(self.venue.faults.stats()["total"])

    async def cycle(self, n: int) -> None:
        """An entry (market or limit with a resting take-profit), its exit, then the checks."""
        kind = self.rng.choice(("market", "limit"))
        self.manager.config = self.configs[kind]
        now = self.clock.now_ms()
        price = self.venue.market.last_price(SYMBOL, now)
        amount = Decimal(self.rng.choice(("0.001", "0.002", "0.003")))
        take_profit = None
        if kind == "limit":
            take_profit = (price * Decimal(1 + self.rng.uniform(-0.001, 0.004))).quantize(
                Decimal("0.1")
            )
        intent = OrderIntent(
            mode=Mode.LIVE,
            symbol=SYMBOL,
            side=Side.BUY,
            amount=amount,
            price=price,
            stop_loss=(price * Decimal("0.5")).quantize(Decimal("0.1")),
            take_profit=take_profit,
            created_at=now,
            reason="r1",
            signal_id=n,
        )
        self._queue_faults(self.rng.randint(1, 3))
        report = await self.manager.execute(intent)
        if report.intent_id is not None:
            self.intents[report.intent_id] = amount
        position_id = report.position_id
        if position_id is not None:
            self.positions.append(position_id)
        await self.settle()
        if position_id is not None:
            if self.rng.random() < 0.5:  # let the market move: resting orders may fill
                await self.venue.advance(step=1)
                await self.tracker.on_price(
                    SYMBOL, self.venue.market.last_price(SYMBOL, self.clock.now_ms())
                )
            self._queue_faults(self.rng.randint(0, 2))
            position = self.store.get_position(position_id)
            if position is not None and position.closed_at is None:
                try:
                    await self.manager.exit_position(position_id, "r1")
                except Exception as exc:  # an exit that failed is retried below
                    logger.info("exit of {}: {}", position_id, exc)
            await self.settle(position_id)
        self.venue.faults.clear()  # faults that did not fire do not count
        await self.reconcile_until_quiet()
        self.verify([position_id] if position_id is not None else [])
        self.result.cycles += 1

    async def settle(self, position_id: int | None = None) -> None:
        """Drive working orders, unresolved orders and the exit to an end, as the bot's loops
        do (poll, reconciler pass, exit retry); after a while the faults are cleared so that
        every cycle ends."""
        for step in range(_SETTLE_STEPS):
            unresolved = [
                o
                for o in self.store.open_orders()
                if o.status in (OrderStatus.UNRESOLVED, OrderStatus.PENDING)
            ]
            position = self.store.get_position(position_id) if position_id is not None else None
            exiting = position is not None and position.closed_at is None
            if not self.manager.working and not unresolved and not exiting:
                return
            if step == _SETTLE_STEPS // 2:
                self.venue.faults.clear()
            if self.manager.working:
                await self.venue.advance(step=1)
            await self.manager.poll()
            if unresolved:
                await self.reconciler.run()
            if exiting and position_id is not None:
                position = self.store.get_position(position_id)
                if (
                    position is not None
                    and position.closed_at is None
                    and not any(
                        not o.status.is_terminal
                        for o in self.store.orders_for_position(position_id)
                        if o.side is Side.SELL and o.purpose != "take_profit"
                    )
                ):
                    try:
                        await self.manager.exit_position(position_id, "r1")
                    except Exception as exc:
                        logger.info("exit of {}: {}", position_id, exc)
        self._problem(f"cycle did not settle: {self.manager.working or 'unresolved orders'}")

    async def reconcile_until_quiet(self) -> None:
        """Reconciler passes (faults off) until no order is unresolved, at most a few."""
        for _ in range(6):
            report = await self.reconciler.run()
            waiting = [o for o in self.store.open_orders() if o.status is OrderStatus.UNRESOLVED]
            if not waiting and not report.not_found:
                return
            await self.venue.advance(ms=30_000)  # the reconciler's window runs on venue time

    # ---- checks -----------------------------------------------------------------------------

    def _problem(self, text: str, kind: str = "problem") -> bool:
        if text in self._seen:
            return False
        self._seen.add(text)
        if kind == "duplicate":
            self.result.duplicates += 1
        elif kind == "lost":
            self.result.lost_fills += 1
        else:
            self.result.problems.append(text)
        logger.error("R1 {} {}: {}", self.exchange, kind, text)
        if self.progress is not None:
            self.progress(f"{self.exchange} {kind}: {text}")
        return True

    def _db_orders(self, positions: list[int] | None = None) -> list[Order]:
        orders: dict[str, Order] = {}
        for pid in self.positions if positions is None else positions:
            for order in self.store.orders_for_position(pid):
                orders[order.client_order_id] = order
        self.coids.update(orders)
        return list(orders.values())

    def verify(self, positions: list[int] | None = None) -> None:
        """Compare the venue's books (the truth) with our database: every venue order, and our
        orders of ``positions`` (default: all)."""
        books = self.venue.books(API_KEY)
        venue_orders = books["orders"]
        by_coid: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for vo in venue_orders:
            by_coid[str(vo["client_order_id"])].append(vo)
        trades_by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for trade in books["trades"]:
            trades_by_order[str(trade["order_id"])].append(trade)
        ours = {o.client_order_id: o for o in self._db_orders(positions)}
        for coid, placed in by_coid.items():
            for extra in placed[1:]:
                self._problem(f"client id {coid} placed again as {extra['id']}", "duplicate")
            if coid not in self.coids:
                for vo in placed:
                    self._problem(f"venue order {vo['id']} ({coid}) unknown to us", "duplicate")
        filled_by_intent: Counter[str] = Counter()
        for coid, order in ours.items():
            placed = by_coid.get(coid, [])
            venue_filled = sum((Decimal(vo["filled"]) for vo in placed), Decimal(0))
            if order.intent_id is not None:
                filled_by_intent[order.intent_id] += venue_filled  # type: ignore[assignment]
            venue_trades = [t for vo in placed for t in trades_by_order[str(vo["id"])]]
            fills = self.store.fills_for_order(coid)
            theirs = Counter((Decimal(t["amount"]), Decimal(t["price"])) for t in venue_trades)
            mine = Counter((f.amount, f.price) for f in fills)
            for trade, count in (theirs - mine).items():
                for _ in range(count):
                    self._problem(f"{coid}: venue trade {trade} not in our fills", "lost")
            for fill, count in (mine - theirs).items():
                for _ in range(count):
                    self._problem(f"{coid}: our fill {fill} not at the venue", "lost")
            if order.status is OrderStatus.FILLED and (
                not placed or venue_filled != order.amount or order.filled != venue_filled
            ):
                self._problem(
                    f"{coid}: ours filled {order.filled}/{order.amount}, venue {venue_filled}",
                    "lost",
                )
            if order.status.is_terminal and placed and order.filled != venue_filled:
                self._problem(
                    f"{coid}: {order.status.value} with {order.filled}, venue {venue_filled}",
                    "lost",
                )
        for intent_id, filled in filled_by_intent.items():
            wanted = self.intents.get(intent_id)
            if wanted is not None and Decimal(filled) > wanted:
                self._problem(f"intent {intent_id} filled {filled} > {wanted}", "duplicate")
        for pid in self.positions if positions is None else positions:
            position = self.store.get_position(pid)
            if position is not None and position.closed_at is None:
                if self.manager.working:
                    continue
                self._problem(f"position {pid} still open after its exit ({position.amount})")
        self.result.orders = len(venue_orders)

    # ---- the run ----------------------------------------------------------------------------

    async def run(self, faults: int, max_cycles: int | None = None) -> R1Result:
        """Cycles until ``faults`` faults have been injected."""
        started = time.perf_counter()
        n = 0
        while self._faults_fired() < faults:
            n += 1
            if max_cycles is not None and n > max_cycles:
                self._problem(f"stopped after {max_cycles} cycles")
                break
            await self.cycle(n)
            if self.progress is not None and n % 25 == 0:
                self.progress(f"{self.exchange}: {n} cycles, {self._faults_fired()} faults")
        await self.reconcile_until_quiet()
        self.verify()  # everything once more at the end
        stats = self.venue.faults.stats()
        self.result.faults = int(stats["total"])
        self.result.fault_counts = dict(stats["counts"])
        self.result.statuses = dict(Counter(o.status.value for o in self._db_orders()))
        self.result.seconds = time.perf_counter() - started
        return self.result


async def run_r1(
    exchange: str,
    faults: int,
    seed: int,
    *,
    database_url: str | None = None,
    progress: Callable[[str], None] | None = None,
    quiet: bool = True,
) -> R1Result:
    """Run R1 on one exchange (a fresh SQLite file unless ``database_url`` is given)."""
    with tempfile.TemporaryDirectory(prefix="kmg-r1-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'r1.sqlite'}"
        if quiet:
            logger.disable("kmg_autotrader")
        harness = Harness(exchange, seed, url, progress=progress)
        try:
            await harness.start()
            return await harness.run(faults)
        finally:
            await harness.stop()
            if quiet:
                logger.enable("kmg_autotrader")


async def run_r1_concurrently(exchanges: tuple[str, ...], faults: int, seed: int) -> list[R1Result]:
    """R1 on several exchanges at once (one venue and one SQLite file each; the test suite's
    short run: their waits overlap)."""
    logger.disable("kmg_autotrader")
    try:
        return list(
            await asyncio.gather(*(run_r1(e, faults, seed, quiet=False) for e in exchanges))
        )
    finally:
        logger.enable("kmg_autotrader")


def main(argv: list[str] | None = None) -> int:
    """Command line: prints the figures; exit 1 on any duplicate, lost fill or problem."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--faults", type=int, default=1000, help="faults per exchange")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--exchange", choices=EXCHANGES, help="one exchange (default: both)")
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--verbose", action="store_true", help="print progress")
    args = parser.parse_args(argv)
    if args.faults < 1:
        parser.error("--faults must be at least 1")
    logger.remove()
    logger.add(sys.stderr, level="ERROR")

    def progress(text: str) -> None:
        if args.verbose:
            print(text, file=sys.stderr, flush=True)

    results = []
    for exchange in [args.exchange] if args.exchange else list(EXCHANGES):
        result = asyncio.run(
            run_r1(
                exchange, args.faults, args.seed, database_url=args.database_url, progress=progress
            )
        )
        results.append(result)
        print(
            f"{result.line(f'R1 {exchange}')} ({result.cycles} cycles, "
            f"{result.seconds:.1f} s, seed {args.seed})"
        )
        print(f"  faults: {dict(sorted(result.fault_counts.items()))}")
        print(f"  our orders: {dict(sorted(result.statuses.items()))}")
        for problem in result.problems[:20]:
            print(f"  problem: {problem}")
    total = R1Result("all", args.seed)
    for r in results:
        total.faults += r.faults
        total.orders += r.orders
        total.duplicates += r.duplicates
        total.lost_fills += r.lost_fills
        total.problems += r.problems
    print(total.line())
    return 0 if total.ok else 1


if __name__ == "__main__":
    sys.exit(main())
