"""Parity: the live autopilot, fed real candles through a replay feed, makes exactly the orders,
fills and trades the backtester makes on the same candles.

The live side is wired the way ``kmg demo`` wires it (``build_runtime``, a paper exchange on a
simulated clock, PAPER, advisor off, a SQLite database, the risk parameters stored as the
dashboard stores them) and driven by :class:`ReplayFeed` candle by candle. The backtest side is
:func:`run_backtest`, which computes the signals vectorised and runs risk → execution →
portfolio only on the candles where something can happen. Both must agree to the last Decimal:
every order (symbol, side, purpose, type, decision candle, amount) with every fill (time, amount,
price, fee), every closed trade, and every risk rejection by reason. Any divergence in either
decision path — signals, warm-up, fill timing, stops on highs and lows, cooldown clocks,
equity marks and breakers, sizing — shows up as a first differing row.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from loguru import logger

from kmg_autotrader.autopilot.bot import BotSummary
from kmg_autotrader.autopilot.feeds import ClosedCandle, ReplayFeed
from kmg_autotrader.autopilot.wiring import build_runtime, sample_markets
from kmg_autotrader.backtest import runner as backtest_runner
from kmg_autotrader.backtest.runner import BacktestRequest, BacktestResult, run_backtest
from kmg_autotrader.config import load_settings
from kmg_autotrader.domain import MarketInfo, Mode, Position
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.paper import FileLedger, PaperEngine, PaperExchange, PaperSettings
from kmg_autotrader.execution.store_db import RepositoryStore
from kmg_autotrader.execution.store_memory import MemoryStore
from kmg_autotrader.pipeline import PipelineOutcome
from kmg_autotrader.risk.params import RiskParams, RiskParamsStore
from kmg_autotrader.sample_data import load_sample_set
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from tests.data import BTC_USDT_CSV

PAIRS = ["ETH/BTC", "LTC/BTC", "XMR/BTC"]  # 2018, volatile: every risk gate gets exercised

# A fill, an order, a closed trade, as plain tuples compared with ==
FillRow = tuple[int, Decimal, Decimal, Decimal]  # time, amount, price, fee
OrderRow = tuple[str, str, str, str, int, Decimal, tuple[FillRow, ...]]
TradeRow = tuple[str, int, Decimal, int | None, Decimal | None, Decimal, Decimal, str | None]
VerdictRow = tuple[int, str, str, Decimal]  # decision time, symbol, reason, equity judged on


@dataclass(frozen=True)
class Case:
    """One market data set and the parameters both sides run with."""

    name: str
    frames: dict[str, pd.DataFrame]
    quote: str
    balance: Decimal
    strategy: str
    risk: RiskParams
    min_trades: int
    must_reject: tuple[str, ...] = ()  # risk gates the case is there to exercise


@dataclass
class Run:
    """What one side did."""

    orders: list[OrderRow]
    trades: list[TradeRow]
    rejections: Counter[str]
    verdicts: list[VerdictRow]
    seconds: float


def _btc_usdt(rows: slice) -> dict[str, pd.DataFrame]:
    frame = pd.read_csv(BTC_USDT_CSV)  # the packaged real candles, read as the raw CSV
    return {"BTC/USDT": frame.iloc[rows].reset_index(drop=True)}


def _pairs(n: int) -> dict[str, pd.DataFrame]:
    frames = load_sample_set("btc-pairs")
    return {symbol: frames[symbol].iloc[:n].reset_index(drop=True) for symbol in PAIRS}


# ---- normalising both sides' records ------------------------------------------------------------


def _order_rows(
    store: MemoryStore | RepositoryStore, positions: Iterable[Position]
) -> list[OrderRow]:
    rows: list[OrderRow] = []
    for position in positions:
        assert position.id is not None
        for order in store.orders_for_position(position.id):
            fills = tuple(
                (f.timestamp, f.amount, f.price, f.fee)
                for f in sorted(
                    store.fills_for_order(order.client_order_id), key=lambda f: f.timestamp
                )
            )
            rows.append(
                (
                    order.symbol,
                    order.side.value,
                    order.purpose,
                    order.type.value,
                    order.created_at,  # the close time of the candle the order was decided on
                    order.amount,
                    fills,
                )
            )
    return sorted(rows, key=lambda r: (r[4], r[0], r[1], r[2]))


def _trade_rows(positions: Iterable[Position]) -> list[TradeRow]:
    rows: list[TradeRow] = [
        (
            p.symbol,
            p.opened_at,
            p.entry_price,
            p.closed_at,
            p.exit_price,
            p.fees_paid,
            p.realized_pnl,
            p.exit_reason,
        )
        for p in positions
        if p.closed_at is not None and p.exit_reason != "entry_unfilled"
    ]
    return sorted(rows, key=lambda r: (r[1], r[0]))


# ---- the two sides ------------------------------------------------------------------------------


def _markets(case: Case) -> dict[str, MarketInfo]:
    return sample_markets(list(case.frames), "binance")


def _backtest(case: Case, monkeypatch: pytest.MonkeyPatch) -> tuple[Run, BacktestResult]:
    stores: list[MemoryStore] = []
    store_class = backtest_runner.BacktestStore

    class Captured(store_class):  # type: ignore[misc,valid-type]
        """The backtest's own store, kept so its orders and fills can be read afterwards."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            stores.append(self)

    monkeypatch.setattr(backtest_runner, "BacktestStore", Captured)
    settings = load_settings(None, strategy=case.strategy)
    request = BacktestRequest(
        strategy=case.strategy,
        exchange="binance",
        timeframe="5m",
        initial_balance=case.balance,
        quote=case.quote,
        risk_params=case.risk,
        signal_params=settings.signal_params,
        execution_mode=settings.execution_mode,
    )
    verdicts: list[VerdictRow] = []

    def on_outcome(outcome: PipelineOutcome) -> None:
        if outcome.risk is not None:
            risk = outcome.risk
            equity = Decimal(str(risk.checks["equity"]))
            verdicts.append((outcome.decision.decided_at, risk.symbol, risk.reason_code, equity))

    started = time.perf_counter()
    result = asyncio.run(
        run_backtest(dict(case.frames), request, markets=_markets(case), on_outcome=on_outcome)
    )
    seconds = time.perf_counter() - started
    monkeypatch.setattr(backtest_runner, "BacktestStore", store_class)
    (store,) = stores
    positions = list(store.positions.values())
    rejections = Counter(dict(result.recorder.rejections))
    run = Run(
        _order_rows(store, positions),
        _trade_rows(positions),
        rejections,
        sorted(verdicts),
        seconds,
    )
    return run, result


async def _live_async(case: Case, data_dir: Path) -> tuple[BotSummary, Repositories, Any]:
    settings = load_settings(
        None,
        data_dir=data_dir,
        strategy=case.strategy,
        symbols=list(case.frames),
        timeframe="5m",
        trading_mode=Mode.PAPER,
        advisor_mode="off",
        exchange="binance",
    )
    database = open_database(f"sqlite:///{(data_dir / 'parity.sqlite').resolve()}")
    repos = Repositories(database)
    # the risk parameters as the dashboard stores them (a new version in the database)
    defaults = RiskParams.from_settings(settings)
    changes = {k: v for k, v in case.risk.model_dump().items() if getattr(defaults, k) != v}
    if changes:
        RiskParamsStore(repos.risk_params, defaults).update(changes, source="parity-test")
    first = min(int(f["timestamp"].iloc[0]) for f in case.frames.values())
    clock = SimulatedClock(first)
    markets = _markets(case)
    engine = PaperEngine(
        markets,
        settings=PaperSettings(exchange_id=settings.exchange),
        clock=clock,
        ledger=FileLedger(data_dir / "paper_book.json", repos.balances),
        balances={case.quote: case.balance},
    )
    paper = PaperExchange(engine)
    runtime = build_runtime(
        settings,
        repos,
        mode=Mode.PAPER,
        clock=clock,
        exchange=paper,
        markets=markets,
        paper=paper,
        quote=case.quote,
    )
    assert runtime.params.current()[1] == case.risk
    runtime.bot.p.manager.resume()
    feed = ReplayFeed(case.frames, settings.timeframe_ms, clock=clock, speed=0)
    await runtime.start()
    try:
        summary = await runtime.bot.run(feed, asyncio.Event())
    finally:
        await runtime.stop()
    return summary, repos, database


def _live(case: Case, data_dir: Path) -> tuple[Run, BotSummary]:
    started = time.perf_counter()
    summary, repos, database = asyncio.run(_live_async(case, data_dir))
    seconds = time.perf_counter() - started
    try:
        store = RepositoryStore(repos, Mode.PAPER)
        positions = repos.positions.open_positions(Mode.PAPER)
        offset = 0
        while batch := repos.positions.closed_positions(Mode.PAPER, limit=200, offset=offset):
            positions.extend(batch)
            offset += len(batch)
        with sqlite3.connect(data_dir / "parity.sqlite") as connection:
            rows = connection.execute(
                "SELECT created_at, symbol, reason_code, json_extract(checks, '$.equity') "
                "FROM risk_decisions"
            ).fetchall()
        verdicts = sorted((int(t), s, r, Decimal(str(e))) for t, s, r, e in rows)
        run = Run(
            _order_rows(store, positions),
            _trade_rows(positions),
            Counter(summary.rejections),
            verdicts,
            seconds,
        )
    finally:
        database.dispose()
    return run, summary


# ---- the comparison -----------------------------------------------------------------------------


def _first_difference(name: str, backtest: list[Any], live: list[Any]) -> str:
    for i, (b, lv) in enumerate(zip(backtest, live, strict=False)):
        if b != lv:
            return f"{name} #{i} differs:\n  backtest {b}\n  live     {lv}"
    return f"{name}: backtest has {len(backtest)}, live {len(live)}"


def _assert_same(case: Case, backtest: Run, live: Run) -> None:
    assert backtest.orders == live.orders, _first_difference("order", backtest.orders, live.orders)
    assert backtest.trades == live.trades, _first_difference("trade", backtest.trades, live.trades)
    assert backtest.rejections == live.rejections
    # every risk verdict at the same candle, for the same reason, on the same marked equity
    assert backtest.verdicts == live.verdicts, _first_difference(
        "risk verdict", backtest.verdicts, live.verdicts
    )
    assert len(backtest.trades) >= case.min_trades, f"{case.name}: too few trades to mean much"
    for reason in case.must_reject:
        assert backtest.rejections[reason] > 0, f"{case.name}: no {reason} rejection"


BTC_SLICE = slice(2900, 4300)  # 1,400 candles, 2023-01-12 → 01-17: a rally, then a range

CASES = {
    "default-btc_usdt": lambda: Case(
        "default-btc_usdt",
        _btc_usdt(BTC_SLICE),
        "USDT",
        Decimal(10_000),
        "default",
        RiskParams(),
        4,
    ),
    # fixed 100 USDT stakes; no extra margin over fees, so the 2023 ATR clears the fee edge
    "sma_cross_rsi-btc_usdt": lambda: Case(
        "sma_cross_rsi-btc_usdt",
        _btc_usdt(BTC_SLICE),
        "USDT",
        Decimal(10_000),
        "sma_cross_rsi",
        RiskParams(stake_amount=100, fee_safety_margin=0, slippage_bps=0),
        3,
    ),
    "default-btc_pairs": lambda: Case(
        "default-btc_pairs",
        _pairs(1500),
        "BTC",
        Decimal(1),
        "default",
        RiskParams(),
        15,
        ("LOSS_COOLDOWN",),
    ),
    # a tight daily loss limit, so the kill-switch decides: it trips at 10:30 on 2018-01-11
    # (a mark between events), rejects three entries that day (XMR/BTC at 20:05 among them);
    # 1,050 candles reach the first loss cooldown too (LTC/BTC, 18:50 on 2018-01-13)
    "default-btc_pairs-kill_switch": lambda: Case(
        "default-btc_pairs-kill_switch",
        _pairs(1050),
        "BTC",
        Decimal(1),
        "default",
        RiskParams(daily_loss_limit_percent=1.5),
        10,
        ("DAILY_LOSS_KILL_SWITCH", "LOSS_COOLDOWN"),
    ),
    "sma_cross_rsi-btc_pairs": lambda: Case(
        "sma_cross_rsi-btc_pairs",
        _pairs(800),
        "BTC",
        Decimal(1),
        "sma_cross_rsi",
        RiskParams(stake_amount=0.002),
        20,
        ("LOSS_COOLDOWN", "SYMBOL_COOLDOWN", "FEE_EDGE"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_live_autopilot_matches_backtest(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]()
    backtest, result = _backtest(case, monkeypatch)
    live, summary = _live(case, tmp_path / "data")
    logger.info(
        "parity {}: {} orders, {} trades, rejections {}; backtest {:.2f}s, live {:.2f}s",
        name,
        len(backtest.orders),
        len(backtest.trades),
        dict(backtest.rejections),
        backtest.seconds,
        live.seconds,
    )
    assert summary.candles == result.candles == sum(len(f) for f in case.frames.values())
    _assert_same(case, backtest, live)


async def test_replay_feed_opens_each_step_before_closing_it() -> None:
    """Orders decided on a close fill at the next candle's open, at the open's time: the feed
    shows every candle of a step at its open time, then closes them at the close time."""
    tf = 300_000
    frames = {
        symbol: pd.DataFrame(
            {"timestamp": [0, tf], "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1}
        )
        for symbol in ("A/X", "B/X")
    }
    clock = SimulatedClock(0)
    seen: list[tuple[str, str, int, int]] = []

    async def on_open(event: ClosedCandle) -> None:
        seen.append(("open", event.symbol, event.candle.timestamp, clock.now_ms()))

    async def on_candle(event: ClosedCandle) -> None:
        seen.append(("close", event.symbol, event.candle.timestamp, clock.now_ms()))

    async def on_price(symbol: str, price: float, ts: int) -> None:
        raise AssertionError("a replay feed sends candles only")

    feed = ReplayFeed(frames, tf, clock=clock, speed=0)
    await feed.run(on_candle, on_price, asyncio.Event(), on_open=on_open)
    assert seen == [
        ("open", "A/X", 0, 0),
        ("open", "B/X", 0, 0),
        ("close", "A/X", 0, tf),
        ("close", "B/X", 0, tf),
        ("open", "A/X", tf, tf),
        ("open", "B/X", tf, tf),
        ("close", "A/X", tf, 2 * tf),
        ("close", "B/X", tf, 2 * tf),
    ]
