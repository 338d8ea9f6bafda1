"""Reliability R2: ``kill -9`` of ``kmg run --live`` at random moments, restart each time.

A ``kmg venue`` subprocess replays the packaged BTC/USDT candles at a high ``--speed`` and keeps
running all along: its books are the truth. ``kmg run --live`` (settings that trade within a
few candles, :data:`tests.e2e.harness.TRADE_SOON`, and risk parameters without cooldowns, set
the way the dashboard sets them) is started, killed with SIGKILL after a seeded random delay,
and started again, ``--kills`` times. Then one clean run (start-up reconciliation, trading until
it has caught up with the venue and a few candles more, SIGTERM) and the checks:

* every venue trade of the account is matched by exactly one fill in our database and every
  fill by one venue trade (same trade id, side, amount, price, fee): 0 lost, 0 duplicated;
* 0 duplicate orders: no client order id twice at the venue, every venue order known to our
  database, at most one venue order per entry intent and one filled exit per position;
* every open position has its stop: a stop price is stored, the entry is finished (not left
  ``opening``), and the mental stop monitor was armed after every restart: no venue candle
  after the entry filled (up to the last one the bot handled) went through the stop of a
  position that is still open or was not closed;
* our LIVE balances table equals the venue's balances.

Run: ``python benchmarks/reliability_r2.py --kills 50 --seed 1 [--exchange binance|kraken]``;
prints ``R2: K kills, F fills, 0 lost, 0 duplicated, P open positions all with stops, balances
equal: yes`` and exits 1 on any failure (each one listed). ``--workdir`` keeps the logs, the
venue state and the bot's database for a post-mortem.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: tests.e2e

from tests.e2e.harness import TRADE_SOON, HarnessError, Rehearsal, VenueConfig

from kmg_autotrader.domain import Mode, Position
from kmg_autotrader.exchange.adapter import timeframe_ms
from kmg_autotrader.exchange.urls import apply_url_overrides
from kmg_autotrader.risk.params import RiskParams, RiskParamsStore
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories

SYMBOL = "BTC/USDT"
TIMEFRAME = "5m"
TF_MS = timeframe_ms(TIMEFRAME)
PRINTED = Decimal("1e-8")  # the finest amount either exchange prints
# Risk parameters that let the bot trade on most crosses (the defaults wait 30 to 120 minutes
# after a trade and allow 20 entries a day): more orders, so more kills land near one.
BUSY_RISK: dict[str, Any] = {
    "cooldown_minutes": 0,
    "cooldown_after_loss_minutes": 0,
    "max_trades_per_day": 10_000,
    "daily_loss_limit_percent": 100.0,
    "fee_safety_margin": 0.0,
    "slippage_bps": 0.0,
}


# Kraken's fees (0.26 % taker; the signal stage's fee gate counts 0.8 % a round trip) need a
# target further away than TRADE_SOON's 10 ATR before a cross is worth an entry.
EXCHANGE_SETTINGS: dict[str, dict[str, str]] = {
    "binance": {},
    "kraken": {"SIGNAL_ATR_TARGET_MULT": "40"},
}


def bot_settings(exchange: str) -> dict[str, str]:
    """The bot's settings for a reliability run on ``exchange``: :data:`TRADE_SOON` plus what
    the exchange's fees need."""
    return {**TRADE_SOON, **EXCHANGE_SETTINGS[exchange]}


def set_risk_params(database_url: str, changes: dict[str, Any], source: str) -> None:
    """Store a version of the risk parameters in the bot's database before it first starts
    (what the dashboard's risk page does); migrates the database on the way."""
    database = open_database(database_url)
    try:
        defaults = RiskParams.from_settings(
            SimpleNamespace(
                max_position_percent=0.2, max_drawdown=float(TRADE_SOON["MAX_DRAWDOWN"])
            )
        )
        repo = Repositories(database).risk_params
        # the LIVE bot's parameters (stores that keep them per mode take ``mode``)
        per_mode = "mode" in inspect.signature(RiskParamsStore).parameters
        store = (
            RiskParamsStore(repo, defaults, mode=Mode.LIVE)  # type: ignore[call-arg]
            if per_mode
            else RiskParamsStore(repo, defaults)
        )
        store.update(changes, source=source, comment="reliability benchmark")
    finally:
        database.dispose()


def wire_trade_id(exchange: str, venue_trade_id: str) -> str:
    """The id a client sees for one of the venue's trades (its books number them ``P<order>-<n>``;
    each dialect prints them as its exchange does)."""
    if exchange == "kraken":
        from kmg_autotrader.venue.kraken import trade_txid

        return trade_txid(venue_trade_id)
    order, _, n = venue_trade_id.partition("-")
    return str(int(order.lstrip("P")) * 1000 + int(n))  # Binance's integer tradeId


async def reported_balances(r: Rehearsal) -> dict[str, Decimal]:
    """``{currency: total}`` as the venue reports the account to a client (signed REST, a real
    ccxt class), zero totals left out: Binance prints 8 decimals, the books keep more."""
    import ccxt.async_support as ccxt_async

    key, secret = r.config.keys
    client = getattr(ccxt_async, r.config.exchange)(
        {"apiKey": key, "secret": secret, "enableRateLimit": False}
    )
    apply_url_overrides(client, r.venue.url)
    try:
        balance = await client.fetch_balance()
    finally:
        await client.close()
    totals = {c: Decimal(str(v)) for c, v in (balance.get("total") or {}).items() if v}
    return {c: v for c, v in totals.items() if v != 0}


async def venue_candles(exchange: str, base_url: str, since: int, until: int) -> list[list[float]]:
    """The venue's closed candles of :data:`SYMBOL` opening in ``[since, until)``, asked like
    any client does (public REST, a real ccxt class pointed at the venue)."""
    import ccxt.async_support as ccxt_async

    client = getattr(ccxt_async, exchange)({"enableRateLimit": False})
    apply_url_overrides(client, base_url)
    rows: list[list[float]] = []
    try:
        cursor = since
        while cursor < until:
            batch = await client.fetch_ohlcv(SYMBOL, TIMEFRAME, since=cursor, limit=500)
            batch = [r for r in batch if cursor <= int(r[0]) < until]
            if not batch:
                break
            rows.extend(batch)
            cursor = int(batch[-1][0]) + TF_MS
    finally:
        await client.close()
    return rows


# ---- the run ---------------------------------------------------------------------------------


@dataclass
class R2Config:
    """One R2 run. Delays are wall seconds after ``kmg run`` was started."""

    kills: int = 50
    seed: int = 1
    exchange: str = "binance"
    speed: float = 1200.0
    min_delay: float = 0.5
    max_delay: float = 20.0
    final_candles: int = 6  # candles the clean run trades after it caught up
    min_trades: int = 2  # the clean run goes on until the venue holds this many trades
    open_wait_candles: int = 40  # then it waits this long at most for an open position
    workdir: Path | None = None


@dataclass
class R2Result:
    """What the run found; :attr:`ok` when every check passed."""

    config: R2Config
    kills: int = 0
    fills: int = 0
    venue_trades: int = 0
    lost: int = 0
    duplicated: int = 0
    duplicate_orders: int = 0
    open_positions: int = 0
    positions_without_stop: int = 0
    held_at_kills: int = 0  # open positions found after the kills (summed over kills)
    balances_equal: bool = False
    delays: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every check passed (and something was actually traded)."""
        return not self.problems

    def line(self) -> str:
        """The one-line figure."""
        stops = (
            "all with stops"
            if not self.positions_without_stop
            else (f"{self.positions_without_stop} without a stop")
        )
        return (
            f"R2: {self.kills} kills, {self.fills} fills, {self.lost} lost, "
            f"{self.duplicated} duplicated, {self.open_positions} open positions {stops}, "
            f"balances equal: {'yes' if self.balances_equal else 'no'}"
        )


async def run_r2(config: R2Config) -> R2Result:
    """Kill and restart the bot ``config.kills`` times, run it clean once, check the books."""
    started = time.monotonic()
    result = R2Result(config)
    rng = random.Random(config.seed)
    with tempfile.TemporaryDirectory(prefix="kmg-r2-") as tmp:
        workdir = config.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        venue = VenueConfig(exchange=config.exchange, speed=config.speed)
        async with Rehearsal(workdir, venue, bot_settings=bot_settings(config.exchange)) as r:
            r.data_dir.mkdir(parents=True, exist_ok=True)
            set_risk_params(r.db.url, BUSY_RISK, source="reliability_r2")
            for _ in range(config.kills):
                delay = round(rng.uniform(config.min_delay, config.max_delay), 3)
                result.delays.append(delay)
                bot = r.start_bot(live=True)
                await asyncio.sleep(delay)
                if not bot.running:
                    raise HarnessError(
                        f"kmg run exited with {bot.returncode} before its kill\n{bot.log_tail()}"
                    )
                bot.kill()
                result.kills += 1
                if r.db.ready():  # what the restart finds: positions that must keep their stop
                    held = [p for p in r.db.open_positions(Mode.LIVE) if p.amount > 0]
                    result.held_at_kills += len(held)
                    result.problems.extend(
                        f"position {p.id} open at kill {result.kills} has no stop price"
                        for p in held
                        if p.stop_loss is None
                    )
            last_candle = await clean_run(r, config)
            await check(r, result, last_candle)
    result.seconds = time.monotonic() - started
    return result


async def clean_run(r: Rehearsal, config: R2Config) -> int:
    """Start the bot, let it reconcile and catch up with the venue plus ``final_candles``
    candles (and until the venue holds ``min_trades`` trades), then until a position is open
    (at most ``open_wait_candles`` more: the end state then holds coins too), stop it with
    SIGTERM. Returns the close time of the last candle it handled."""
    r.start_bot(live=True)
    target = (await r.state())["now_ms"] // TF_MS * TF_MS + config.final_candles * TF_MS

    async def caught_up() -> int | None:
        latest = r.db.repos.equity.latest(Mode.LIVE)
        if latest is None or latest.timestamp < target:
            return None
        if len((await r.books())["trades"]) < config.min_trades:
            return None
        return latest.timestamp

    reached = await r.wait_for(caught_up, "the clean run catching up with the venue", 180)
    until = reached + config.open_wait_candles * TF_MS

    def holding() -> bool:
        if any(
            p.amount > 0 and p.extra.get("state") == "open" for p in r.db.open_positions(Mode.LIVE)
        ):
            return True
        latest = r.db.repos.equity.latest(Mode.LIVE)
        return latest is not None and latest.timestamp >= until

    await r.wait_for(holding, "a position open, or enough candles", timeout=120)
    await r.stop_bot(timeout=15)
    return last_handled(r)


def last_handled(r: Rehearsal) -> int:
    """The close of the last candle the bot handled to the end (stops checked, decided): its
    equity is marked, at that close, when the next candle comes (the mark a stopping bot
    writes at its own 'now' does not count)."""
    points = r.db.repos.equity.series(Mode.LIVE, limit=50)
    closes = [p.timestamp for p in points if p.timestamp % TF_MS == 0]
    if not closes:
        raise HarnessError("the bot handled no candle")
    return max(closes)


# ---- the checks ------------------------------------------------------------------------------


async def check(r: Rehearsal, result: R2Result, last_candle: int) -> None:
    """Compare our database with the venue's books; fill ``result``."""
    books = await r.books()
    trades: list[dict[str, Any]] = books["trades"]
    orders: list[dict[str, Any]] = books["orders"]
    fills = r.db.fills(Mode.LIVE)
    ours = {o.client_order_id: o for o in r.db.orders(Mode.LIVE)}
    result.fills, result.venue_trades = len(fills), len(trades)
    problems = result.problems
    if not trades:
        problems.append("no trade at the venue: nothing was tested")

    # fills <-> venue trades, by trade id
    fill_ids = Counter(f.trade_id for f in fills)
    by_id = {wire_trade_id(r.config.exchange, str(t["id"])): t for t in trades}
    for trade_id, trade in by_id.items():
        if trade_id not in fill_ids:
            result.lost += 1
            problems.append(
                f"lost fill: venue trade {trade_id} ({trade['side']} "
                f"{trade['amount']} @ {trade['price']}, order "
                f"{trade['client_order_id']}) has no fill in our database"
            )
    for trade_id, count in fill_ids.items():
        if count > 1:
            result.duplicated += count - 1
            problems.append(f"duplicated fill: trade {trade_id} stored {count} times")
        if trade_id not in by_id:
            result.duplicated += 1
            problems.append(f"phantom fill: trade {trade_id} is not in the venue's books")
    for f in fills:
        trade = by_id.get(f.trade_id)
        if trade is None:
            continue
        theirs = (
            trade["client_order_id"],
            trade["side"],
            Decimal(trade["amount"]),
            Decimal(trade["price"]),
        )
        mine = (f.client_order_id, f.side.value, f.amount, f.price)
        # fees: the books keep more decimals than the exchange prints (Binance: 8)
        if theirs != mine or abs(Decimal(trade["fee"]) - f.fee) >= PRINTED:
            problems.append(
                f"fill {f.trade_id} differs: ours {mine} fee {f.fee}, venue {theirs} "
                f"fee {trade['fee']}"
            )

    # duplicate orders
    coids = Counter(o["client_order_id"] for o in orders)
    for coid, count in coids.items():
        if count > 1:
            result.duplicate_orders += count - 1
            problems.append(f"duplicate order: client id {coid} {count} times at the venue")
        if coid not in ours:
            result.duplicate_orders += 1
            problems.append(f"unknown order at the venue: client id {coid}")
    per_intent: dict[str, list[str]] = defaultdict(list)
    exits: dict[int, list[str]] = defaultdict(list)
    repos = r.db.repos
    for o in orders:
        mine_order = ours.get(o["client_order_id"])
        if mine_order is None:
            continue
        if mine_order.intent_id and mine_order.purpose == "entry":
            per_intent[mine_order.intent_id].append(o["client_order_id"])
        position_id = repos.orders.position_id(Mode.LIVE, o["client_order_id"])
        if o["side"] == "sell" and position_id is not None and Decimal(o["filled"]) > 0:
            exits[position_id].append(o["client_order_id"])
    for intent, coids_ in per_intent.items():
        if len(coids_) > 1:
            result.duplicate_orders += len(coids_) - 1
            problems.append(f"duplicate entry: intent {intent} sent as {coids_}")
    for position_id, coids_ in exits.items():
        if len(coids_) > 1:
            result.duplicate_orders += len(coids_) - 1
            problems.append(f"duplicate exit: position {position_id} sold by {coids_}")

    # positions and their stops
    positions = [p for p in r.db.open_positions(Mode.LIVE) if p.amount > 0]
    result.open_positions = len(positions)
    for p in positions:
        if p.stop_loss is None:
            result.positions_without_stop += 1
            problems.append(f"open position {p.id} has no stop price")
        if p.extra.get("state") == "opening":
            problems.append(f"open position {p.id} was left opening")
    await check_stops(r, result, last_candle, by_id)

    # balances
    reported = await reported_balances(r)
    books_totals = await r.venue_totals()
    table = r.db.balances(Mode.LIVE)
    result.balances_equal = reported == table
    if not result.balances_equal:
        problems.append(f"balances differ: ours {table}, the venue reports {reported}")
    for currency in set(books_totals) | set(reported):
        gap = abs(books_totals.get(currency, Decimal(0)) - reported.get(currency, Decimal(0)))
        if gap >= PRINTED:
            problems.append(
                f"the venue reports {reported.get(currency)} {currency}, its books hold "
                f"{books_totals.get(currency)}"
            )


async def check_stops(
    r: Rehearsal, result: R2Result, last_candle: int, trades: dict[str, dict[str, Any]]
) -> None:
    """No venue candle after a position's entry filled (up to ``last_candle``, the close of
    the last candle the bot handled) went through its stop while the position stayed open:
    the mental stop monitor was armed across every restart."""
    positions: list[Position] = [*r.db.open_positions(Mode.LIVE), *r.db.closed_positions(Mode.LIVE)]
    entries: dict[int, int] = {}  # position id -> time of its first entry fill at the venue
    repos = r.db.repos
    for f in r.db.fills(Mode.LIVE):
        if f.side.value != "buy" or f.trade_id not in trades:
            continue
        position_id = repos.orders.position_id(Mode.LIVE, f.client_order_id)
        if position_id is not None:
            stamp = int(trades[f.trade_id]["timestamp"])
            entries[position_id] = min(entries.get(position_id, stamp), stamp)
    if not entries:
        return
    first = min(entries.values()) // TF_MS * TF_MS
    candles = await venue_candles(r.config.exchange, r.venue.url, first, last_candle)
    for p in positions:
        if p.id not in entries or p.stop_loss is None or p.amount <= 0:
            continue
        since = entries[p.id] // TF_MS * TF_MS  # the candle it filled in counts (the bot's rule)
        crossed = next(
            (c for c in candles if int(c[0]) >= since and Decimal(str(c[3])) <= p.stop_loss),
            None,
        )
        if crossed is None:
            continue
        if p.closed_at is None:
            result.problems.append(
                f"stop not honoured: position {p.id} (stop {p.stop_loss}) is still open although "
                f"the candle at {int(crossed[0])} went down to {crossed[3]}"
            )


# ---- the script ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> R2Config:
    """``--kills N --seed S [--exchange binance|kraken] [--speed X] [--workdir DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="kill -9 rounds (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill moments")
    parser.add_argument("--exchange", choices=("binance", "kraken"), default="binance")
    parser.add_argument("--speed", type=float, default=1200.0, help="the venue's --speed")
    parser.add_argument("--max-delay", type=float, default=20.0, help="latest kill (s)")
    parser.add_argument("--workdir", type=Path, help="keep logs, books and database here")
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    return R2Config(
        kills=args.kills,
        seed=args.seed,
        exchange=args.exchange,
        speed=args.speed,
        max_delay=args.max_delay,
        workdir=args.workdir,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run R2 and print its figures; 0 when every check passed."""
    config = parse_args(argv)
    try:
        result = asyncio.run(run_r2(config))
    except HarnessError as exc:
        print(f"R2 failed: {exc}")
        return 1
    print(result.line())
    print(
        f"   {config.exchange}, venue --speed {config.speed:g}, seed {config.seed}: "
        f"{result.venue_trades} venue trades, {result.held_at_kills} open positions found "
        f"at kills, {result.seconds:.0f} s"
    )
    for problem in result.problems:
        print(f"   FAIL {problem}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
