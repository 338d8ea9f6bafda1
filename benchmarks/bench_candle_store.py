"""Candle store speed and memory.

1. Parse, validate and store one year of 5m candles for one symbol (105,120 rows) from CSV
   (target < 1 s).
2. Load 10 symbols × 1 year from the store into memory (target < 0.5 s, < 200 MB peak RSS).

Data: a seeded random walk with volatility regimes (speed only; correctness tests use the real
files). Run: ``.venv/bin/python benchmarks/bench_candle_store.py``. Step 2 runs in a fresh
process so its peak RSS is not inflated by step 1.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 365 * 288  # one year of 5m candles
START = 1_672_531_200_000
STEP = 300_000
SYMBOLS = [f"S{i}/USDT" for i in range(10)]


def synthetic_year(seed: int) -> pd.DataFrame:
    """Random walk with volatility regimes; valid OHLC."""
    rng = np.random.default_rng(seed)
    vol = np.repeat(rng.choice([0.0005, 0.001, 0.003], ROWS // 288 + 1), 288)[:ROWS]
    close = 20_000 * np.exp(np.cumsum(rng.normal(0, 1, ROWS) * vol))
    open_ = np.r_[20_000, close[:-1]]
    wick = np.abs(rng.normal(0, 1, ROWS)) * vol * close
    return pd.DataFrame(
        {
            "timestamp": START + np.arange(ROWS, dtype="int64") * STEP,
            "open": open_.round(2),
            "high": (np.maximum(open_, close) + wick).round(2),
            "low": (np.minimum(open_, close) - wick).round(2),
            "close": close.round(2),
            "volume": rng.uniform(1, 500, ROWS).round(5),
        }
    )


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB.

    VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would inherit the
    parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_step(data_dir: str) -> None:
    """Child process: load every symbol, print timing and RSS as JSON."""
    from kmg_autotrader.storage.candle_store import CandleStore

    store = CandleStore(data_dir)
    before = peak_rss_mb()
    t0 = time.perf_counter()
    frames = {s: store.read("bench", s, "5m") for s in SYMBOLS}
    elapsed = time.perf_counter() - t0
    rows = sum(len(f) for f in frames.values())
    print(
        json.dumps(
            {"seconds": elapsed, "rows": rows, "rss_before": before, "rss_peak": peak_rss_mb()}
        )
    )


def main() -> None:
    from kmg_autotrader.collector.importer import read_candle_file
    from kmg_autotrader.storage.candle_store import CandleStore

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv = root / "BTC_USDT-5m.csv"
        synthetic_year(0).to_csv(csv, index=False)
        store = CandleStore(root / "data")
        t0 = time.perf_counter()
        imported = read_candle_file(csv)
        t1 = time.perf_counter()
        store.append("bench", "BTC/USDT", "5m", imported.frame)
        t2 = time.perf_counter()
        print(f"1 symbol x 1 year 5m = {len(imported.frame):,} rows")
        print(f"  parse+validate CSV : {t1 - t0:.3f} s")
        print(f"  store (validate, merge, atomic parquet write): {t2 - t1:.3f} s")
        print(f"  total              : {t2 - t0:.3f} s   (target < 1 s)")

        for i, symbol in enumerate(SYMBOLS):
            store.write_all("bench", symbol, "5m", synthetic_year(i + 1))
        size = sum(p.stat().st_size for p in store.iter_paths()) / 1e6
        out = subprocess.run(
            [sys.executable, __file__, "--load", str(root / "data")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        res = json.loads(out.strip().splitlines()[-1])
        print(f"10 symbols x 1 year from the store = {res['rows']:,} rows ({size:.1f} MB parquet)")
        print(f"  load into memory   : {res['seconds']:.3f} s   (target < 0.5 s)")
        print(
            f"  peak RSS           : {res['rss_peak']:.0f} MB (after imports "
            f"{res['rss_before']:.0f} MB)   (target < 200 MB)"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--load":
        load_step(sys.argv[2])
    else:
        main()
