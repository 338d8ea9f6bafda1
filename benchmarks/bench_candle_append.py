"""Live candle appends (issue 18, item 19): cost per closed candle whatever the history stored.

Prints, for the candle store in ``src`` (and, with ``--baseline REV``, for the store as it was
at git revision ``REV``, which rewrote the whole parquet file on every append):

1. one appended candle (the live feed's call) with 1,000 / 10,000 / 105,120 rows stored (a year
   of 5m): CPU and wall time, median and p99 over ``--appends`` appends;
2. a read of a year with 0 / 16 / 64 / 256 pending segments;
3. a compaction (64 pending segments folded into a year), one series and ten;
4. closed candle → store appended for 10 symbols with a year each, as the live feed does it
   (each symbol's consumer task builds a one-row frame and awaits
   ``asyncio.to_thread(store.append, ...)``, all ten concurrently): per-symbol latency and the
   time until all ten are stored, median and p99 over ``--rounds`` closed candles.

CPU time is the process's (user + system); on a shared machine it is the figure to compare.
Run: ``.venv/bin/python benchmarks/bench_candle_append.py [--baseline d865fd5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_candle_store import ROWS, START, STEP, synthetic_year

SIZES = (1_000, 10_000, ROWS)
SYMBOLS = [f"S{i}/USDT" for i in range(10)]
STORE_MODULE = "src/kmg_autotrader/storage/candle_store.py"


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def baseline_store(rev: str) -> type:
    """``CandleStore`` as it was at git revision ``rev`` (loaded from ``git show``)."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "-C", str(root), "show", f"{rev}:{STORE_MODULE}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType(f"candle_store_{rev}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:{STORE_MODULE}", "exec"), module.__dict__)
    return module.CandleStore  # type: ignore[no-any-return]


def make_store(factory: type, data_dir: Path, **kwargs: Any) -> Any:
    try:
        return factory(data_dir, **kwargs)
    except TypeError:  # the baseline store takes no compaction settings
        return factory(data_dir)


def candle_row(ts: int, price: float) -> dict[str, float | int]:
    return {
        "timestamp": ts,
        "open": price,
        "high": price + 1,
        "low": price - 1,
        "close": price,
        "volume": 1.0,
    }


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(CPU s, wall s) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"median {statistics.median(ms):7.2f} ms, p99 {p99:7.2f} ms"


def bench_append(label: str, factory: type, year: pd.DataFrame, appends: int) -> None:
    print(f"\n[{label}] one closed candle appended (`store.append`, the live feed's call)")
    for rows in SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            store = make_store(factory, Path(tmp), compact_after=None)
            store.write_all("bench", "BTC/USDT", "5m", year.iloc[:rows])
            cpu, wall = [], []
            for i in range(appends):
                row = pd.DataFrame([candle_row(START + (ROWS + i) * STEP, 20_000.0 + i)])
                c, w = timed(
                    lambda s=store, r=row: s.append("bench", "BTC/USDT", "5m", r)  # type: ignore[misc]
                )
                cpu.append(c)
                wall.append(w)
            print(f"  {rows:>7,} rows stored: CPU {summary(cpu)} | wall {summary(wall)}")


def bench_read_and_compact(factory: type, year: pd.DataFrame) -> None:
    print("\n[segments] read a year (105,120 rows) with N pending one-candle segments")
    for pending in (0, 16, 64, 256):
        with tempfile.TemporaryDirectory() as tmp:
            store = make_store(factory, Path(tmp), compact_after=None)
            store.write_all("bench", "BTC/USDT", "5m", year)
            for i in range(pending):
                row = pd.DataFrame([candle_row(START + (ROWS + i) * STEP, 20_000.0)])
                store.append("bench", "BTC/USDT", "5m", row)
            runs = [timed(lambda s=store: s.read("bench", "BTC/USDT", "5m")) for _ in range(7)]
            print(
                f"  {pending:>3} pending: CPU {summary([r[0] for r in runs])} | "
                f"wall {summary([r[1] for r in runs])}"
            )

    print("\n[segments] compaction: 64 pending segments folded into a year")
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(factory, Path(tmp), compact_after=None)
        for symbol in SYMBOLS:
            store.write_all("bench", symbol, "5m", year)
        cpu, wall = [], []
        for rnd in range(3):
            for symbol in SYMBOLS:
                for i in range(64):
                    ts = START + (ROWS + rnd * 64 + i) * STEP
                    store.append("bench", symbol, "5m", pd.DataFrame([candle_row(ts, 2e4)]))
            c0, w0 = time.process_time(), time.perf_counter()
            for symbol in SYMBOLS:
                c, w = timed(lambda s=symbol: store.compact("bench", s, "5m"))
                cpu.append(c)
                wall.append(w)
            if rnd == 0:
                all_cpu, all_wall = time.process_time() - c0, time.perf_counter() - w0
        print(f"  one series : CPU {summary(cpu)} | wall {summary(wall)}")
        print(f"  ten series : {all_cpu * 1000:.0f} ms CPU, {all_wall * 1000:.0f} ms wall")


def bench_live(label: str, factory: type, rounds: int) -> None:
    print(
        f"\n[{label}] closed candle -> store appended, 10 symbols x 1 year stored, "
        "concurrent asyncio.to_thread appends (as the live feed)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(factory, Path(tmp))  # default settings, as the bot builds it
        for i, symbol in enumerate(SYMBOLS):
            store.write_all("bench", symbol, "5m", synthetic_year(i + 1))

        async def run() -> tuple[list[float], list[float], float]:
            per_symbol: list[float] = []
            whole: list[float] = []

            async def consume(symbol: str, ts: int, closed: float) -> None:
                frame = pd.DataFrame([candle_row(ts, 20_000.0)])
                await asyncio.to_thread(store.append, "bench", symbol, "5m", frame)
                per_symbol.append(time.perf_counter() - closed)

            c0 = time.process_time()
            for rnd in range(rounds):
                ts = START + (ROWS + rnd) * STEP
                closed = time.perf_counter()
                await asyncio.gather(*(consume(s, ts, closed) for s in SYMBOLS))
                whole.append(time.perf_counter() - closed)
                await asyncio.sleep(0.01)
            return per_symbol, whole, time.process_time() - c0

        per_symbol, whole, cpu = asyncio.run(run())
        print(f"  per symbol      : wall {summary(per_symbol)}")
        print(f"  all ten stored  : wall {summary(whole)}")
        print(f"  CPU per round   : {cpu / rounds * 1000:.1f} ms (10 appends)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REV", help="also measure the store at git REV")
    parser.add_argument("--appends", type=int, default=60, help="appends per size (default 60)")
    parser.add_argument("--rounds", type=int, default=60, help="closed candles (default 60)")
    args = parser.parse_args()

    from kmg_autotrader.storage.candle_store import CandleStore

    print(f"machine: {machine()}; numpy {np.__version__}, pandas {pd.__version__}")
    year = synthetic_year(0)
    stores: list[tuple[str, type]] = [("segments", CandleStore)]
    if args.baseline:
        stores.insert(0, (f"baseline {args.baseline}", baseline_store(args.baseline)))
    for label, factory in stores:
        bench_append(label, factory, year, args.appends)
    bench_read_and_compact(CandleStore, year)
    for label, factory in stores:
        bench_live(label, factory, args.rounds)


if __name__ == "__main__":
    main()
