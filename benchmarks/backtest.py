"""Backtest speed and memory: 10 symbols × one year of 5m candles (1,051,200 candles).

Run: ``.venv/bin/python benchmarks/backtest.py`` (``--quick`` for a 10× smaller set,
``--repeat N`` to run each measurement N times, 3 by default: on a shared machine the CPU time
of the same run varies by 30 % and more, so the least of N is shown, with the spread).
``--instructions`` instead counts the instructions of each whole process under valgrind's
callgrind (about 10 minutes for the full set): the same count on every run and every machine
of one architecture with the same binaries, so the ratio to the vectorised lower bound can be
compared across days and VMs, which the CPU-time ratio cannot (it moved from 6.3× to 9.5× with
the same code on three VMs of one kind).

Each measurement runs in its own process so peak memory (max RSS) is its own:

* ``sma_cross_rsi`` and ``default`` through the full pipeline (signals → risk → paper
  exchange → portfolio, advisor off), fixed stake 100 USDT for ``sma_cross_rsi`` with risk
  limits that do not bind (its rules alone decide, as in the reference tools);
* the vectorised lower bound: the same ``sma_cross_rsi`` signals in numpy + TA-Lib and
  positions walked with ``searchsorted`` — and the check that both find the same trades.

"run" is the backtest call on candles already in memory (signals, events, equity curve,
metrics); "process" adds interpreter start, imports and generating the synthetic set.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _trade_digest(keys: list[tuple[str, int, int]]) -> str:
    import hashlib

    return hashlib.sha256(repr(sorted(keys)).encode()).hexdigest()[:16]


def child_backtest(strategy: str, n_candles: int) -> dict[str, object]:
    """One full-pipeline backtest (in this process)."""
    import asyncio
    from decimal import Decimal

    from loguru import logger
    from synthetic import make_walk

    from kmg_autotrader.backtest.runner import BacktestRequest, run_backtest, skip_exit_scan
    from kmg_autotrader.risk.params import RiskParams

    logger.remove()
    skip_exit_scan()  # as `kmg backtest` does: the process ends with the report
    frames = make_walk(n_symbols=10, n_candles=n_candles, seed=0)
    candles = sum(len(f) for f in frames.values())
    if strategy == "sma_cross_rsi":
        loose = RiskParams(
            max_open_positions=100,
            max_position_percent=1.0,
            max_total_exposure_percent=1.0,
            cooldown_minutes=0,
            cooldown_after_loss_minutes=0,
            max_drawdown_percent=100,
            daily_loss_limit_percent=100,
            max_trades_per_day=10_000,
        )
        request = BacktestRequest(
            strategy=strategy, stake_amount=Decimal(100), fee_edge=False, risk_params=loose
        )
    else:
        request = BacktestRequest(strategy=strategy)
    started, cpu = time.perf_counter(), time.process_time()
    result = asyncio.run(run_backtest(frames, request, consume=True))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    keys = [(t.symbol, t.entry_time, t.exit_time) for t in result.trades]
    return {
        "what": f"pipeline {strategy}",
        "candles": candles,
        "run_s": elapsed,
        "run_cpu_s": cpu,
        "trades": len(result.trades),
        "open_at_end": result.open_positions,
        "events": result.stats.close_events + result.stats.open_events,
        "digest": _trade_digest(keys),
        "peak_mb": _peak_mb(),
    }


def child_vectorised(n_candles: int) -> dict[str, object]:
    """The numpy + TA-Lib lower bound for ``sma_cross_rsi`` (closed trades only)."""
    import numpy as np
    import talib
    from synthetic import make_walk

    frames = make_walk(n_symbols=10, n_candles=n_candles, seed=0)
    started, cpu = time.perf_counter(), time.process_time()
    keys: list[tuple[str, int, int]] = []
    for symbol, frame in frames.items():
        close = frame["close"].to_numpy()
        ts = frame["timestamp"].to_numpy()
        fast, slow, rsi = talib.SMA(close, 20), talib.SMA(close, 50), talib.RSI(close, 14)
        up = np.zeros(len(close), dtype=bool)
        down = np.zeros(len(close), dtype=bool)
        up[1:] = (fast[1:] > slow[1:]) & (fast[:-1] <= slow[:-1])
        down[1:] = (fast[1:] < slow[1:]) & (fast[:-1] >= slow[:-1])
        entries = np.flatnonzero(up & (rsi < 70))
        exits = np.flatnonzero(down | (rsi > 80))
        n, flat_from = len(close), 0
        while True:
            i = int(np.searchsorted(entries, flat_from))
            if i >= len(entries) or entries[i] + 1 >= n:
                break
            e = int(entries[i])
            j = int(np.searchsorted(exits, e + 1))
            if j >= len(exits) or exits[j] + 1 >= n:
                break
            x = int(exits[j])
            keys.append((symbol, int(ts[e + 1]), int(ts[x + 1])))
            flat_from = x + 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "what": "vectorised numpy+TA-Lib sma_cross_rsi",
        "candles": sum(len(f) for f in frames.values()),
        "run_s": elapsed,
        "run_cpu_s": cpu,
        "trades": len(keys),
        "digest": _trade_digest(keys),
        "peak_mb": _peak_mb(),
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _spawn(*args: str) -> dict[str, object]:
    """Run one measurement in a fresh interpreter; adds its wall and CPU time as a process."""
    started, cpu = time.perf_counter(), _children_cpu()
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    row: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    row["process_s"] = time.perf_counter() - started
    row["process_cpu_s"] = _children_cpu() - cpu
    return row


def _instructions(kind: str, n: int) -> tuple[int, dict[str, object]]:
    """Instructions of one whole measurement process under callgrind, and its result row."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            kind,
            str(n),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    collected = [line for line in out.stderr.splitlines() if "Collected :" in line]
    if not collected:
        raise SystemExit(f"valgrind printed no instruction count for {kind}:\n{out.stderr[-2000:]}")
    row: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return int(collected[-1].split(":")[-1].strip()), row


def main_instructions(n: int) -> None:
    """Print instruction counts of the vectorised and the ``sma_cross_rsi`` processes."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install -y valgrind)")
    print(f"machine: {platform.machine()}, python {platform.python_version()}; valgrind callgrind")
    counts: dict[str, int] = {}
    digests: dict[str, object] = {}
    for kind in ("vectorised", "sma_cross_rsi"):
        counts[kind], row = _instructions(kind, n)
        digests[kind] = row["digest"]
        print(
            f"{row['what']:<40} {int(row['candles']):,} candles  "  # type: ignore[call-overload]
            f"{counts[kind] / 1e6:,.0f} M instructions (whole process)  trades {row['trades']:,}"
        )
    print(
        f"sma_cross_rsi trade list identical to the vectorised one: "
        f"{digests['vectorised'] == digests['sma_cross_rsi']}"
    )
    ratio = counts["sma_cross_rsi"] / counts["vectorised"]
    print(f"pipeline sma_cross_rsi / vectorised (whole process, instructions): {ratio:.1f}×")


def main() -> None:
    """Print the figures."""
    if "--child" in sys.argv:
        kind, n = sys.argv[2], int(sys.argv[3])
        row = child_vectorised(n) if kind == "vectorised" else child_backtest(kind, n)
        print(json.dumps(row))
        return
    n = 10_512 if "--quick" in sys.argv else 105_120
    if "--instructions" in sys.argv:
        main_instructions(n)
        return
    print(
        f"machine: {os.cpu_count()} cpus, python {platform.python_version()}; "
        f"load average before: {_load()}"
    )
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
    print(f"each measurement runs {repeat}× in turn; the run with the least process CPU is shown")
    kinds = ("vectorised", "sma_cross_rsi", "default")
    runs: dict[str, list[dict[str, object]]] = {kind: [] for kind in kinds}
    for _ in range(repeat):  # interleaved, so a busy moment does not hit one kind only
        for kind in kinds:
            runs[kind].append(_spawn(kind, str(n)))
    rows = [min(runs[kind], key=lambda r: float(r["process_cpu_s"])) for kind in kinds]  # type: ignore[arg-type]
    for kind in kinds:
        spread = sorted(float(r["process_cpu_s"]) for r in runs[kind])  # type: ignore[arg-type]
        print(f"  {kind}: process CPU over {repeat} runs: " + ", ".join(f"{x:.2f}" for x in spread))
    for row in rows:
        candles = int(row["candles"])  # type: ignore[call-overload]
        run_s = float(row["run_s"])  # type: ignore[arg-type]
        run_cpu = float(row["run_cpu_s"])  # type: ignore[arg-type]
        print(
            f"{row['what']:<40} {candles:,} candles  run {run_s:6.2f} s wall "
            f"{run_cpu:6.2f} s cpu ({candles / run_cpu / 1e6:5.2f} M candles/cpu-s)  "
            f"process {row['process_s']:6.2f} s wall {row['process_cpu_s']:6.2f} s cpu  "
            f"peak {row['peak_mb']:4.0f} MB  trades {row['trades']:,}"
        )
    vec, sma = rows[0], rows[1]
    same = vec["digest"] == sma["digest"]
    print(f"sma_cross_rsi trade list identical to the vectorised one: {same}")
    for key, label in (
        ("process_s", "whole process, wall"),
        ("process_cpu_s", "whole process, cpu"),
        ("run_s", "run only, wall"),
        ("run_cpu_s", "run only, cpu"),
    ):
        ratio = float(sma[key]) / float(vec[key])  # type: ignore[arg-type]
        print(f"pipeline sma_cross_rsi / vectorised ({label}): {ratio:.1f}×")
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
