"""Closed candle → order submitted (issue 18, item 19), with the real bot and a year stored.

The bot is built by ``build_runtime`` as ``kmg run`` builds it (PAPER, advisor off, SQLite under
a temporary DATA_DIR or ``--db`` PostgreSQL), for 10 symbols on 1m candles, each with a year of
history (525,600 candles) in the candle store; each symbol's strategy is warmed up on its last
1,000 stored candles, as ``kmg run`` does. Then ``bot.run`` (heartbeat and all) is driven by a
feed that delivers every minute the ten symbols' closed candles at once, each from its own task,
exactly as the live feed's candle consumers do: ``await bot.on_candle(...)``, then the closed
candle appended to the store with ``asyncio.to_thread``. Settings that make the default strategy
trade every few dozen candles (``tests/e2e/harness.py``'s TRADE_SOON) give a few hundred orders.
Beside the candles, one task plays the price stream: ``--ticks`` ticks of every symbol per round,
awaited one after the other, contending for the bot's lock as live ticks do.

Rounds follow each other at once; with ``--pace live`` (the default) the store's background
compaction, scheduled by the appends, finishes between two rounds, as the minute between two
live closes allows; ``--pace tight`` lets it overlap the next rounds (a stress figure).

The latency of an order is the wall time from its candle's delivery to the paper exchange's
``create_order`` call (the order leaving the bot); prints p50 / p99 / max over the orders (and
the event loop's CPU time over the same spans: on a shared machine the wall time mostly
measures the neighbours; the loop runs in the main thread only), the
per-round time until all ten candles are handled, and (``--profile``) a cProfile of the rounds.

Run: ``PYTHONPATH=src:. .venv/bin/python benchmarks/order_latency.py [--rounds 600]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import cProfile
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kmg_autotrader.autopilot.feeds import ClosedCandle
from kmg_autotrader.autopilot.wiring import build_runtime, sample_markets
from kmg_autotrader.config import load_settings
from kmg_autotrader.domain import Candle, Mode
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.runtime import open_paper_exchange
from kmg_autotrader.risk.params import RiskParams, RiskParamsStore
from kmg_autotrader.signals.params import SignalParams
from kmg_autotrader.storage.candle_compactor import compactor
from kmg_autotrader.storage.candle_store import CandleStore
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories

SYMBOLS = [f"S{i}/USDT" for i in range(10)]
# the symbol whose closed candle the running task handles (a price tick's orders are not counted)
HANDLING: contextvars.ContextVar[str | None] = contextvars.ContextVar("handling", default=None)
MINUTE = 60_000
YEAR = 525_600  # 1m candles
WARMUP = 1_000
START_MS = 1_672_531_200_000  # 2023-01-01 00:00 UTC
# tests/e2e/harness.py's TRADE_SOON: the default strategy trades every few dozen candles
TRADE_SOON = {
    "SIGNAL_SMA_FAST": "3",
    "SIGNAL_SMA_SLOW": "30",
    "SIGNAL_ATR_PCT_MIN": "0",
    "SIGNAL_ATR_STOP_MULT": "0.5",
    "SIGNAL_ATR_TARGET_MULT": "10",
    "SIGNAL_FEE_SAFETY_MARGIN": "0",
    "SIGNAL_SLIPPAGE_ALLOWANCE": "0",
    "SIGNAL_CONFIDENCE_THRESHOLD": "0.05",
    "SIGNAL_CONFIDENCE_THRESHOLD_HIGH_VOLATILITY": "0.05",
    "SIGNAL_CONFIDENCE_THRESHOLD_CHOP": "0.05",
    "SIGNAL_PLAYBOOK_TREND_DOWN": "trend_following",
    "SIGNAL_PLAYBOOK_RANGE": "trend_following",
    "SIGNAL_PLAYBOOK_HIGH_VOLATILITY": "trend_following",
    "SIGNAL_PLAYBOOK_CHOP": "trend_following",
}
RISK = {
    "cooldown_minutes": 0,
    "cooldown_after_loss_minutes": 0,
    "max_trades_per_day": 10_000,
    "daily_loss_limit_percent": 50.0,
    "max_drawdown_percent": 50.0,
    "max_open_positions": 10,
    "max_total_exposure_percent": 1.0,
    "max_position_percent": 0.1,
}


def machine() -> str:
    """CPU count and model, Python and library versions."""
    model = "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}, load {os.getloadavg()[0]:.1f}"
    )


def walk(n: int, seed: int, base: float) -> pd.DataFrame:
    """A seeded random walk of ``n`` 1m candles with volatility regimes."""
    rng = np.random.default_rng(seed)
    sigma = np.array([0.0004, 0.001, 0.003])[(np.cumsum(rng.random(n) < 1 / 2880) % 3)]
    ret = sigma * rng.standard_normal(n)
    close = base * np.exp(np.cumsum(ret))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.standard_normal((2, n))) * sigma * close * 0.5
    return pd.DataFrame(
        {
            "timestamp": START_MS + MINUTE * np.arange(n, dtype=np.int64),
            "open": open_,
            "high": np.maximum(open_, close) + wick[0],
            "low": np.minimum(open_, close) - wick[1],
            "close": close,
            "volume": rng.lognormal(3.0, 0.6, n),
        }
    )


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``."""
    return float(np.quantile(np.array(values), q)) if values else float("nan")


class MinuteFeed:
    """Delivers each round's ten closed candles at once, each from its own task, as the live
    feed's candle consumers do (handle, then append the candle to the store in a thread)."""

    def __init__(
        self,
        frames: dict[str, pd.DataFrame],
        start: int,
        rounds: int,
        *,
        clock: SimulatedClock,
        store: CandleStore,
        delivered: dict[str, float],
        round_times: list[float],
        profiler: cProfile.Profile | None,
        pace: str = "live",
        ticks: int = 1,
    ) -> None:
        self.pace = pace
        self.ticks = ticks
        self.frames = frames
        self.start = start
        self.rounds = rounds
        self.clock = clock
        self.store = store
        self.delivered = delivered
        self.delivered_cpu: dict[str, float] = {}
        self.round = -1
        self.round_times = round_times
        self.profiler = profiler

    async def run(
        self,
        on_candle: Callable[[ClosedCandle], Awaitable[object]],
        on_price: Any,
        stop: asyncio.Event,
        *,
        on_open: Any = None,
    ) -> None:
        """Every round: the ten candles handled concurrently; then ``stop``."""
        cols = {
            s: {c: f[c].to_numpy() for c in ("timestamp", "open", "high", "low", "close", "volume")}
            for s, f in self.frames.items()
        }

        async def consumer(symbol: str, row: int) -> None:
            col = cols[symbol]
            candle = Candle(
                int(col["timestamp"][row]),
                float(col["open"][row]),
                float(col["high"][row]),
                float(col["low"][row]),
                float(col["close"][row]),
                float(col["volume"][row]),
            )
            HANDLING.set(symbol)  # this consumer task's context only
            self.delivered[symbol] = time.perf_counter()
            self.delivered_cpu[symbol] = time.thread_time()
            await on_candle(ClosedCandle(symbol, candle, candle.timestamp + MINUTE))
            frame = pd.DataFrame([_row(candle)])
            await asyncio.to_thread(self.store.append, "binance", symbol, "1m", frame)

        async def prices(row: int) -> None:  # the price stream: one task, tick after tick
            for n in range(self.ticks):
                for symbol in self.frames:
                    close = float(cols[symbol]["close"][row]) * (1 + 0.0001 * n)
                    await on_price(symbol, close, int(cols[symbol]["timestamp"][row]) + MINUTE)

        if self.profiler is not None:
            self.profiler.enable()
        for k in range(self.rounds):
            row = self.start + k
            self.round = k
            self.clock.set(START_MS + (row + 1) * MINUTE)
            began = time.perf_counter()
            await asyncio.gather(prices(row), *(consumer(s, row) for s in self.frames))
            self.round_times.append(time.perf_counter() - began)
            if self.pace == "live":  # the minute between two closes: background work is done
                if self.profiler is not None:
                    self.profiler.disable()
                await asyncio.to_thread(compactor().drain, 60.0)
                if self.profiler is not None:
                    self.profiler.enable()
            await asyncio.sleep(0)
        if self.profiler is not None:
            self.profiler.disable()
        stop.set()


def _row(candle: Candle) -> dict[str, float | int]:
    return {
        "timestamp": candle.timestamp,
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
    }


async def bench(args: argparse.Namespace, workdir: Path) -> None:
    """Build the bot over a year stored, drive the rounds, print the figures."""
    history = YEAR if not args.quick else 20_000
    frames = {s: walk(history + args.rounds, i, 100.0 * (i + 1)) for i, s in enumerate(SYMBOLS)}
    store = CandleStore(workdir / "data")
    began = time.perf_counter()
    for symbol, frame in frames.items():
        store.append("binance", symbol, "1m", frame.iloc[:history])
    print(f"stored {len(SYMBOLS)} x {history:,} 1m candles in {time.perf_counter() - began:.1f} s")

    settings = load_settings(
        None,
        data_dir=workdir / "data",
        symbols=SYMBOLS,
        timeframe="1m",
        trading_mode=Mode.PAPER,
        advisor_mode="off",
        paper_starting_balance=100_000,
        signal_params=SignalParams.from_env(TRADE_SOON),
        **({"postgres_url": args.db} if args.db else {}),
    )
    database = open_database(settings.database_url)
    repos = Repositories(database)
    RiskParamsStore(repos.risk_params, RiskParams(), mode=Mode.PAPER).update(RISK, source="bench")
    clock = SimulatedClock(START_MS + history * MINUTE)
    markets = sample_markets(SYMBOLS, settings.exchange)
    paper = open_paper_exchange(settings, repos, markets, clock=clock)
    runtime = build_runtime(
        settings,
        repos,
        mode=Mode.PAPER,
        clock=clock,
        exchange=paper,
        markets=markets,
        paper=paper,
        quote="USDT",
    )
    bot = runtime.bot
    for symbol in SYMBOLS:  # as kmg run warms up: the last candles stored
        frame = store.read("binance", symbol, "1m").iloc[-WARMUP:]
        bot.p.engine.warm_up(symbol, frame)
    bot.p.manager.resume()

    delivered: dict[str, float] = {}
    latencies: list[float] = []
    cpu_latencies: list[float] = []
    order_rounds: list[int] = []
    feed_ref: list[MinuteFeed] = []
    purposes: dict[str, int] = {}
    create_order = paper.create_order

    async def timed_create_order(symbol: str, *a: Any, **kw: Any) -> dict[str, Any]:
        if HANDLING.get() == symbol:  # an order of this symbol's closed candle
            latencies.append(time.perf_counter() - delivered[symbol])
            order_rounds.append(feed_ref[0].round)
            cpu_latencies.append(time.thread_time() - feed_ref[0].delivered_cpu[symbol])
            side = a[1] if len(a) > 1 else kw.get("side", "?")
            purposes[side] = purposes.get(side, 0) + 1
        else:
            purposes["on a tick"] = purposes.get("on a tick", 0) + 1
        return await create_order(symbol, *a, **kw)

    paper.create_order = timed_create_order  # type: ignore[method-assign]
    round_times: list[float] = []
    # CPU time, not wall: on a shared machine the wall clock mostly measures the neighbours
    timer = time.perf_counter if args.profile == "wall" else time.process_time
    profiler = cProfile.Profile(timer) if args.profile else None
    feed = MinuteFeed(
        {s: f for s, f in frames.items()},
        history,
        args.rounds,
        clock=clock,
        store=store,
        delivered=delivered,
        round_times=round_times,
        profiler=profiler,
        pace=args.pace,
        ticks=args.ticks,
    )
    feed_ref.append(feed)
    await runtime.start()
    cpu0 = time.process_time()
    try:
        summary = await bot.run(feed, asyncio.Event())
    finally:
        await runtime.stop()
        database.dispose()
    cpu = time.process_time() - cpu0

    print(f"machine: {machine()}")
    print(
        f"{args.rounds} rounds x {len(SYMBOLS)} symbols, {history:,} candles stored each, "
        f"database {'PostgreSQL' if args.db else 'SQLite'}, pace {args.pace}, "
        f"{args.ticks} tick(s)/symbol/round; CPU {cpu:.1f} s"
    )
    print(
        f"bot: {summary.candidates} candidates, {summary.entries} entries, {summary.exits} exits, "
        f"rejections {dict(summary.rejections)}; orders by side {purposes}"
    )
    ms = [x * 1000 for x in latencies]
    print(
        f"closed candle -> order submitted ({len(ms)} orders): p50 {pct(ms, 0.5):7.2f} ms, "
        f"p99 {pct(ms, 0.99):7.2f} ms, max {max(ms) if ms else float('nan'):7.2f} ms"
    )
    worst = sorted(range(len(ms)), key=lambda k: -ms[k])[:3]
    print(
        "  slowest orders: "
        + ", ".join(f"{ms[k]:.0f} ms (round #{order_rounds[k]})" for k in worst)
    )
    ms = [x * 1000 for x in cpu_latencies]
    print(
        f"  the same, event-loop CPU time only (what an idle machine would show): "
        f"p50 {pct(ms, 0.5):7.2f} ms, p99 {pct(ms, 0.99):7.2f} ms"
    )
    rt = [x * 1000 for x in round_times]
    print(
        f"all ten candles handled (per round): p50 {statistics.median(rt):7.2f} ms, "
        f"p99 {pct(rt, 0.99):7.2f} ms"
    )
    slowest = sorted(range(len(rt)), key=lambda k: -rt[k])[:6]
    print("slowest rounds: " + ", ".join(f"#{k} {rt[k]:.0f} ms" for k in sorted(slowest)))
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    """Parse the arguments and run the benchmark in a temporary folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=600, help="closed minutes to deliver")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="cpu",
        choices=("cpu", "wall"),
        help="cProfile the rounds, timed by CPU (default) or wall time",
    )
    parser.add_argument("--quick", action="store_true", help="20,000 candles stored, not a year")
    parser.add_argument(
        "--pace",
        choices=("live", "tight"),
        default="live",
        help="live: background work (candle compaction) finishes between rounds, as the minute "
        "between two 1m closes allows; tight: rounds back to back (a stress figure)",
    )
    parser.add_argument(
        "--ticks",
        type=int,
        default=1,
        help="price ticks per symbol per round, from one task beside the candles (the live "
        "price stream's); 0: none",
    )
    parser.add_argument(
        "--db", default=None, help="an empty PostgreSQL database's URL (default: SQLite)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kmg-order-latency-") as tmp:
        asyncio.run(bench(args, Path(tmp)))


if __name__ == "__main__":
    main()
