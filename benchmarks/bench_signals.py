"""Signal-engine speed: a year of 5m candles × 10 symbols (vectorised) and one live update.

Run: ``.venv/bin/python benchmarks/bench_signals.py``. Targets: < 1 s for the whole history
(indicators + rules + regimes + orchestrator filters), < 1 ms for one incremental update.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loguru import logger
from synthetic import make_walk

from kmg_autotrader.domain import Candle
from kmg_autotrader.signals.engine import SignalEngine


def main() -> None:
    """Print the figures."""
    logger.remove()  # keep the timing free of log output
    data = make_walk(n_symbols=10, n_candles=105_120, seed=0)
    total = sum(len(df) for df in data.values())
    for strategy in ("default", "sma_cross_rsi"):
        engine = SignalEngine(strategy)
        engine.run_history("SYM0/USDT", next(iter(data.values())).iloc[:5000])  # warm caches
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            entries = exits = 0
            for symbol, df in data.items():
                run = engine.run_history(symbol, df)
                entries += len(run.entry_indices())
                exits += len(run.exit_indices())
            best = min(best, time.perf_counter() - t0)
        print(
            f"[{strategy}] history: {len(data)} symbols × {total // len(data):,} 5m candles "
            f"= {total:,} candles in {best * 1000:.0f} ms "
            f"({total / best / 1e6:.1f} M candles/s); {entries} entries, {exits} exit signals"
        )
        # one live update: warm up on 1,000 candles, then time each new closed candle
        df = data["SYM0/USDT"]
        engine.warm_up("SYM0/USDT", df.iloc[:1000])
        rows = df.iloc[1000:3000].itertuples(index=False)
        times = []
        for r in rows:
            candle = Candle(int(r.timestamp), r.open, r.high, r.low, r.close, r.volume)
            t0 = time.perf_counter()
            engine.on_candle("SYM0/USDT", candle, position_open=False)
            times.append(time.perf_counter() - t0)
        times.sort()
        print(
            f"[{strategy}] incremental update (1 symbol, 1 closed candle): "
            f"median {statistics.median(times) * 1e6:.0f} µs, "
            f"p99 {times[int(len(times) * 0.99)] * 1e6:.0f} µs, max {times[-1] * 1e6:.0f} µs"
        )


if __name__ == "__main__":
    main()
