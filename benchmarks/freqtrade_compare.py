"""Same set, same rules, same run: freqtrade's ``backtesting`` against ``kmg``'s backtester.

Run: ``.venv/bin/python benchmarks/freqtrade_compare.py [--quick] [--repeat N]`` (each tool
runs N times, 2 by default, interleaved; the least CPU of each is compared). Needs freqtrade in
its own virtualenv (``FREQTRADE_VENV``, default ``/tmp/ftvenv``; created with
``pip install freqtrade`` when missing — that one step needs the network). The comparison
itself is offline:

1. the 10-symbol synthetic year (``synthetic.make_walk``) is written as freqtrade feather files
   and as ``kmg``'s parquet candle store;
2. freqtrade backtests a strategy file with the ``sma_cross_rsi`` rules (SMA20/SMA50 cross,
   RSI < 70 in, cross down or RSI > 80 out, no ROI, no stop, stake 100 USDT, fee 0.1 %), its
   exchange markets served from memory instead of the network;
3. ``kmg``'s backtester loads the candle store and replays the same rules through the full
   pipeline (stake 100, no fee-edge gate, risk limits that do not bind).

Both are timed as whole processes (start-up, data loading, backtest) in the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

FT_VENV = Path(os.environ.get("FREQTRADE_VENV", "/tmp/ftvenv"))

STRATEGY = """
import numpy as np
import talib
from freqtrade.strategy import IStrategy


class SmaCrossRsi(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"0": 1000.0}
    stoploss = -0.99
    use_exit_signal = True
    exit_profit_only = False
    ignore_roi_if_entry_signal = False
    startup_candle_count = 0
    process_only_new_candles = True

    def populate_indicators(self, df, metadata):
        close = df["close"].to_numpy(dtype=float)
        df["fast"] = talib.SMA(close, 20)
        df["slow"] = talib.SMA(close, 50)
        df["rsi"] = talib.RSI(close, 14)
        return df

    def populate_entry_trend(self, df, metadata):
        up = (df["fast"] > df["slow"]) & (df["fast"].shift(1) <= df["slow"].shift(1))
        df.loc[up & (df["rsi"] < 70), "enter_long"] = 1
        return df

    def populate_exit_trend(self, df, metadata):
        down = (df["fast"] < df["slow"]) & (df["fast"].shift(1) >= df["slow"].shift(1))
        df.loc[down | (df["rsi"] > 80), "exit_long"] = 1
        return df
"""

FT_RUNNER = """
import json, resource, sys, time
started = time.perf_counter()
markets = json.load(open(sys.argv[1]))
from freqtrade.exchange import exchange as ft_exchange

async def _offline_markets(self, reload=False):
    self._api_async.set_markets(markets)
    return self._api_async.markets

ft_exchange.Exchange._api_reload_markets = _offline_markets
from freqtrade.optimize.backtesting import Backtesting
captured = {}
original = Backtesting.backtest

def backtest(self, *args, **kwargs):
    result = original(self, *args, **kwargs)
    captured["trades"] = [
        (t.pair, int(t.open_date.timestamp() * 1000), int(t.close_date.timestamp() * 1000),
         str(t.exit_reason))
        for t in result["results"].itertuples()
    ]
    return result

Backtesting.backtest = backtest
from freqtrade.main import main
try:
    main(sys.argv[2:-1])
except SystemExit:
    pass
usage = resource.getrusage(resource.RUSAGE_SELF)
json.dump({"seconds": time.perf_counter() - started, "trades": captured.get("trades", []),
           "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024},
          open(sys.argv[-1] + ".result.json", "w"))
"""

KMG_RUNNER = """
import asyncio, json, resource, sys, time
started = time.perf_counter()
from decimal import Decimal
from loguru import logger
logger.remove()
from kmg_autotrader.backtest.data import load_stored
from kmg_autotrader.backtest.runner import BacktestRequest, run_backtest, skip_exit_scan
from kmg_autotrader.risk.params import RiskParams
skip_exit_scan()  # as `kmg backtest` does: the process ends with the report
symbols = sys.argv[2].split(",")
frames = load_stored(sys.argv[1], "binance", symbols, "5m", None, None)
loose = RiskParams(max_open_positions=100, max_position_percent=1.0,
    max_total_exposure_percent=1.0, cooldown_minutes=0, cooldown_after_loss_minutes=0,
    max_drawdown_percent=100, daily_loss_limit_percent=100, max_trades_per_day=10_000)
request = BacktestRequest(strategy="sma_cross_rsi", stake_amount=Decimal(100),
    fee_edge=False, risk_params=loose)
result = asyncio.run(run_backtest(frames, request, consume=True))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - started, "open": result.open_positions,
    "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024,
    "trades": [(t.symbol, t.entry_time, t.exit_time) for t in result.trades]}))
"""


def ensure_freqtrade() -> Path:
    """The freqtrade venv's python (created with pip when missing)."""
    python = FT_VENV / "bin" / "python"
    if not (FT_VENV / "bin" / "freqtrade").exists():
        subprocess.run([sys.executable, "-m", "venv", str(FT_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "freqtrade"], check=True)
    return python


def ccxt_markets(symbols: list[str]) -> dict[str, object]:
    """Unified ccxt spot markets for ``symbols`` (tick-size precision, Binance-like limits)."""
    out: dict[str, object] = {}
    for symbol in symbols:
        base, quote = symbol.split("/")
        out[symbol] = {
            "id": base + quote,
            "symbol": symbol,
            "base": base,
            "quote": quote,
            "baseId": base,
            "quoteId": quote,
            "active": True,
            "type": "spot",
            "spot": True,
            "margin": False,
            "swap": False,
            "future": False,
            "option": False,
            "contract": False,
            "linear": None,
            "inverse": None,
            "settle": None,
            "settleId": None,
            "contractSize": None,
            "precision": {"amount": 1e-6, "price": 1e-6},
            "limits": {
                "amount": {"min": 1e-6, "max": None},
                "price": {"min": None, "max": None},
                "cost": {"min": 5.0, "max": None},
                "leverage": {"min": None, "max": None},
            },
            "maker": 0.001,
            "taker": 0.001,
            "percentage": True,
            "tierBased": False,
            "info": {},
        }
    return out


def write_sets(root: Path, n_candles: int) -> list[str]:
    """The synthetic set as freqtrade feather files and as kmg's candle store."""
    import pandas as pd
    from synthetic import make_walk

    from kmg_autotrader.storage.candle_store import CandleStore

    frames = make_walk(n_symbols=10, n_candles=n_candles, seed=0)
    ft_dir = root / "user_data" / "data" / "binance"
    ft_dir.mkdir(parents=True)
    store = CandleStore(root / "kmg")
    for symbol, frame in frames.items():
        store.write_all("binance", symbol, "5m", frame)
        ft = frame.drop(columns=["timestamp"])
        ft.insert(0, "date", pd.to_datetime(frame["timestamp"], unit="ms", utc=True))
        ft.to_feather(ft_dir / f"{symbol.replace('/', '_')}-5m.feather")
    return list(frames)


def run_freqtrade(root: Path, symbols: list[str]) -> dict[str, object]:
    """freqtrade backtesting as a process; returns its wall time and trades."""
    python = ensure_freqtrade()
    (root / "strategies").mkdir(exist_ok=True)
    (root / "strategies" / "sma_cross_rsi_ft.py").write_text(STRATEGY)
    (root / "markets.json").write_text(json.dumps(ccxt_markets(symbols)))
    (root / "ft_runner.py").write_text(FT_RUNNER)
    config = {
        "max_open_trades": 10,
        "stake_currency": "USDT",
        "stake_amount": 100,
        "dry_run": True,
        "dry_run_wallet": 10_000,
        "timeframe": "5m",
        "trading_mode": "spot",
        "exchange": {"name": "binance", "key": "", "secret": "", "pair_whitelist": symbols},
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "same", "use_order_book": False},
        "exit_pricing": {"price_side": "same", "use_order_book": False},
        "dataformat_ohlcv": "feather",
        "user_data_dir": str(root / "user_data"),
        "datadir": str(root / "user_data" / "data" / "binance"),
        "db_url": "sqlite://",
        "internals": {},
    }
    (root / "config.json").write_text(json.dumps(config))
    started = time.perf_counter()
    proc = subprocess.run(
        [
            str(python),
            str(root / "ft_runner.py"),
            str(root / "markets.json"),
            "backtesting",
            "--config",
            str(root / "config.json"),
            "--strategy",
            "SmaCrossRsi",
            "--strategy-path",
            str(root / "strategies"),
            "--fee",
            "0.001",
            "--export",
            "none",
            "--cache",
            "none",
            "--logfile",
            str(root / "ft.log"),
            str(root / "ft"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    result_file = root / "ft.result.json"
    if not result_file.exists():
        raise SystemExit(f"freqtrade failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    data = json.loads(result_file.read_text())
    return {"wall": wall, "trades": data["trades"], "cpu": data["cpu"], "peak_mb": data["peak_mb"]}


def run_kmg(root: Path, symbols: list[str]) -> dict[str, object]:
    """kmg's backtester as a process, loading the parquet candle store."""
    (root / "kmg_runner.py").write_text(KMG_RUNNER)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(root / "kmg_runner.py"), str(root / "kmg"), ",".join(symbols)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "wall": wall,
        "trades": data["trades"],
        "open": data["open"],
        "cpu": data["cpu"],
        "peak_mb": data["peak_mb"],
    }


def main() -> None:
    """Print both timings and trade counts, and whether the trade lists agree."""
    n = 10_512 if "--quick" in sys.argv else 105_120
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 2
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="kmg-ft-") as tmp:
        root = Path(os.environ.get("KMG_FT_WORKDIR") or tmp)
        root.mkdir(parents=True, exist_ok=True)
        symbols = write_sets(root, n)
        kmgs, fts = [], []
        for _ in range(repeat):  # interleaved; the least CPU of each is compared
            kmgs.append(run_kmg(root, symbols))
            fts.append(run_freqtrade(root, symbols))
        kmg = min(kmgs, key=lambda r: float(r["cpu"]))  # type: ignore[arg-type]
        ft = min(fts, key=lambda r: float(r["cpu"]))  # type: ignore[arg-type]
    ft_trades = ft["trades"]
    assert isinstance(ft_trades, list) and isinstance(kmg["trades"], list)
    ft_closed = sorted((p, o, c) for p, o, c, reason in ft_trades if reason != "force_exit")
    ours = sorted(tuple(t) for t in kmg["trades"])
    print(f"set: 10 symbols × {n:,} 5m candles = {10 * n:,} candles")
    print(f"load average before: {load_before}, after: {_load()}")
    print(
        f"freqtrade backtesting: {ft['wall']:7.2f} s wall {ft['cpu']:7.2f} s cpu "
        f"peak {ft['peak_mb']:5.0f} MB  {len(ft_trades):,} trades "
        f"({len(ft_trades) - len(ft_closed)} force-exited at the end)"
    )
    print(
        f"kmg backtest:          {kmg['wall']:7.2f} s wall {kmg['cpu']:7.2f} s cpu "
        f"peak {kmg['peak_mb']:5.0f} MB  {len(ours):,} closed trades "
        f"({kmg['open']} still open at the end)"
    )
    for name, rows in (("freqtrade", fts), ("kmg", kmgs)):
        cpus = ", ".join(f"{float(r['cpu']):.2f}" for r in rows)  # type: ignore[arg-type]
        print(f"{name} CPU over {repeat} runs: {cpus} (the least is compared)")
    wall = float(ft["wall"]) / float(kmg["wall"])  # type: ignore[arg-type]
    cpu = float(ft["cpu"]) / float(kmg["cpu"])  # type: ignore[arg-type]
    print(f"speed-up (whole processes): {wall:.1f}× wall, {cpu:.1f}× cpu")
    print(f"closed trade lists identical (pair, entry time, exit time): {ft_closed == ours}")
    if ft_closed != ours:
        a, b = set(ft_closed), set(ours)
        print(f"  only freqtrade: {sorted(a - b)[:5]} ({len(a - b)})")
        print(f"  only kmg:       {sorted(b - a)[:5]} ({len(b - a)})")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
