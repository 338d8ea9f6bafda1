"""Wiring a backtest: the paper exchange, the execution stack, the risk manager and the
decision pipeline on a simulated clock — the same classes the live bot uses — then the run,
the trade list, the equity curve and the metrics."""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import gc
import sys
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd
from loguru import logger

from kmg_autotrader.analysis import PerformanceReport, TradeRecord, analyze
from kmg_autotrader.backtest.breakers import BreakerWatch
from kmg_autotrader.backtest.engine import CLOSE, EventLoop, LoopStats
from kmg_autotrader.backtest.equity import equity_curve, timeline
from kmg_autotrader.backtest.markets import backtest_markets
from kmg_autotrader.backtest.stake_risk import StakeRiskGate
from kmg_autotrader.backtest.store import BacktestStore
from kmg_autotrader.backtest.tracks import SymbolTrack
from kmg_autotrader.domain import Balance, ExecutionMode, MarketInfo, Mode, Position, Side
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.domain.fee_edge import EdgeCosts
from kmg_autotrader.execution import (
    ExecutionConfig,
    ExecutionManager,
    MemoryStore,
    PaperEngine,
    PaperExchange,
    PaperSettings,
    PositionTracker,
    RetrySettings,
    SlippageModel,
)
from kmg_autotrader.pipeline import (
    AdvisorStage,
    CountingRecorder,
    DecisionPipeline,
    PipelineOutcome,
    PositionFeedback,
)
from kmg_autotrader.risk.manager import RiskManager
from kmg_autotrader.risk.params import RiskParams, RiskParamsStore
from kmg_autotrader.risk.portfolio_state import PortfolioState
from kmg_autotrader.risk.state import InMemoryRiskStateStore
from kmg_autotrader.signals import SignalEngine, SignalParams

NO_WAIT = RetrySettings(create_attempts=3, lookup_attempts=2, initial_wait=0, max_wait=0)
Progress = Callable[[int], None]
#: Builds the advisor stage once the clock and the tracks exist (``--advisor replay``).
AdvisorFactory = Callable[[SimulatedClock, Mapping[str, SymbolTrack], int], AdvisorStage]


class BacktestError(Exception):
    """A backtest that cannot run (bad input); the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    """What to replay and how. Money in quote currency; ``stake_amount`` None: risk sizing."""

    strategy: str = "default"
    exchange: str = "binance"
    timeframe: str = "5m"
    initial_balance: Decimal = Decimal(10_000)
    quote: str = "USDT"
    stake_amount: Decimal | None = None
    fee_edge: bool = True
    advisor_mode: Literal["off", "replay"] = "off"
    execution_mode: ExecutionMode = ExecutionMode.MARKET_ONLY
    risk_params: RiskParams = field(default_factory=RiskParams)
    signal_params: SignalParams = field(default_factory=SignalParams)
    slippage: SlippageModel = field(default_factory=SlippageModel)


@dataclass(slots=True, repr=False)
class BacktestResult:
    """Everything a backtest produced.

    Its repr is a one-line summary, not every trade and price: ``asyncio.run`` of a coroutine
    that returns a result formats it (Python 3.11's ``Runner.run`` looks its SIGINT handler up
    with ``signal.getsignal``, whose failed enum conversion formats the handler, a partial
    holding the finished main task, whose repr holds its result), and the full repr of a year
    of ten symbols (1.8 million characters) took about 0.03 CPU-s of every such run.
    """

    request: BacktestRequest
    symbols: list[str]
    timestamps: np.ndarray[Any, np.dtype[np.int64]]
    equity: np.ndarray[Any, np.dtype[np.float64]]
    trades: list[TradeRecord]
    report: PerformanceReport
    stats: LoopStats
    recorder: CountingRecorder
    open_positions: int
    candles: int
    elapsed_s: float
    prices: dict[str, pd.DataFrame] = field(default_factory=dict)  # for the HTML report

    def __repr__(self) -> str:
        return (
            f"BacktestResult(strategy={self.request.strategy!r}, symbols={len(self.symbols)}, "
            f"candles={self.candles}, trades={len(self.trades)}, "
            f"open_positions={self.open_positions}, elapsed_s={self.elapsed_s:.2f})"
        )


class BacktestPortfolio:
    """The portfolio state the risk manager sees, built from the paper account and the store;
    prices are the closes of the candles closed by ``now_ms`` (read from the tracks)."""

    def __init__(
        self,
        engine: PaperEngine,
        store: MemoryStore,
        tracks: Mapping[str, SymbolTrack],
        quote: str,
        timeframe_ms: int,
    ) -> None:
        self.engine = engine
        self.store = store
        self.tracks = tracks
        self.quote = quote
        self.tf = timeframe_ms
        # currency → its symbol against the quote and that symbol's track (None: no candles)
        self._pairs: dict[str, tuple[str, SymbolTrack | None]] = {}
        self._balances: dict[str, Balance] = {}  # currency → its last Balance (see __call__)

    def _index(self, symbol: str, now_ms: int) -> tuple[SymbolTrack, int] | None:
        track = self.tracks.get(symbol)
        if track is None:
            return None
        return track, track.candle_at(now_ms - self.tf)

    def close_at(self, symbol: str, now_ms: int) -> float | None:
        """Close of the last candle of ``symbol`` closed at or before ``now_ms``."""
        found = self._index(symbol, now_ms)
        if found is None or found[1] < 0:
            return None
        return float(found[0].close[found[1]])

    def price(self, symbol: str, now_ms: int) -> Decimal | None:
        """:meth:`close_at` as a Decimal."""
        track = self.tracks.get(symbol)
        return None if track is None else track.close_decimal_at(now_ms - self.tf)

    def _pair(self, currency: str) -> tuple[str, SymbolTrack | None]:
        pair = self._pairs.get(currency)
        if pair is None:
            symbol = f"{currency}/{self.quote}"
            pair = self._pairs[currency] = (symbol, self.tracks.get(symbol))
        return pair

    def equity(self, now_ms: int) -> Decimal:
        """Cash plus holdings at the last closes (what the live loop marks every candle).

        Decimal arithmetic on the closes as Decimals, as the live loop's
        :func:`~kmg_autotrader.portfolio.equity.mark_equity` does: a float sum differs from
        the live mark in the last digits (0.9836265043829999 for 0.983626504383), so the peak,
        the day's starting equity and a limit crossing could differ by them.
        """
        total = Decimal(0)
        quote = self.quote
        closed = now_ms - self.tf  # open time of the last candle closed by now_ms
        pairs = self._pairs
        for currency, (free, used) in self.engine.balances.items():
            if not free and not used:
                continue  # most currencies once their positions closed: skip the addition
            amount = free + used
            if not amount:
                continue
            if currency == quote:
                total += amount
                continue
            track = (pairs.get(currency) or self._pair(currency))[1]
            if track is not None:
                price = track.close_decimal_at(closed)
                if price is not None:
                    total += amount * price
        return total

    def __call__(self, now_ms: int) -> PortfolioState:
        """The state as of ``now_ms``."""
        balances: list[Balance] = []
        prices: dict[str, Decimal] = {}
        quote = self.quote
        closed = now_ms - self.tf
        known, pairs = self._balances, self._pairs
        for currency, (free, used) in self.engine.balances.items():
            # the risk state is built on every entry, and most of the account's currencies
            # have not moved since the last one: their frozen Balance is reused. Identity, not
            # equality: an equal Decimal of another exponent would print differently.
            balance = known.get(currency)
            if balance is None or balance.free is not free or balance.used is not used:
                balance = known[currency] = Balance(Mode.PAPER, currency, free, used)
            balances.append(balance)
            if currency != quote and (free or used) and free + used != 0:
                symbol, track = pairs.get(currency) or self._pair(currency)
                if track is not None:
                    price = track.close_decimal_at(closed)
                    if price is not None:
                        prices[symbol] = price
        return PortfolioState.from_account(balances, self.store.open_positions(), prices, quote)


def release_free_heap() -> bool:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim``); False elsewhere.

    Computing a year of signals per symbol allocates and frees tens of MB; glibc keeps that
    freed memory in its heap, and the replay's own objects (orders, fills, positions) then
    grow the process beyond it, so the peak RSS counts the freed memory once more. Measured on
    the 1,051,200-candle benchmark: about 35 MB less peak RSS. Changes no result.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False  # not glibc (musl has no malloc_trim)
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True


#: Young-generation threshold of the cyclic garbage collector during a replay (CPython's is 700).
REPLAY_GC_GEN0 = 10_000


@contextmanager
def replay_gc(gen0: int = REPLAY_GC_GEN0) -> Iterator[None]:
    """Collect cyclic garbage less often while a replay runs; the settings come back after.

    A replay allocates millions of short-lived objects (freed by reference counting, almost
    none in cycles) while the store keeps every order, fill and position. With CPython's
    default threshold of 700 the collector runs a young collection every few events and,
    as the store grows, full collections over the whole heap (100 k+ objects). Measured on
    the 1,051,200-candle benchmark: 258 young, 24 middle and 2 full collections costing about
    0.24 CPU-s, against 17 young and 2 middle ones costing about 0.11 CPU-s with 10,000 (about
    3 % of the run); peak RSS unchanged (263 MB). Collection stays on: cyclic garbage is still
    freed, at most ``gen0`` allocations later.

    The objects alive when the replay starts (modules, candles, signal tracks: hundreds of
    thousands) are frozen (``gc.freeze``) for its duration, so the collections the replay
    still makes scan only what it allocated; they are unfrozen after (unless the process had
    frozen objects itself before: then its freeze is left as it was). About 1.8 % fewer
    instructions for the whole 200,000-candle benchmark process. Changes no result.
    """
    if _ReplayGc.active == 0:
        _ReplayGc.previous = previous = gc.get_threshold()
        gc.set_threshold(max(gen0, previous[0]), *previous[1:])
        _ReplayGc.froze = gc.get_freeze_count() == 0
        if _ReplayGc.froze:
            gc.freeze()
    _ReplayGc.active += 1
    try:
        yield
    finally:
        _ReplayGc.active -= 1
        if _ReplayGc.active == 0:
            gc.set_threshold(*_ReplayGc.previous)
            if _ReplayGc.froze:
                gc.unfreeze()


def skip_exit_scan() -> None:
    """Spare the process's exit the garbage collector's walks over a finished backtest.

    For a command that ends once its backtest is reported (``kmg backtest``, the benchmark
    scripts), not for a library caller that goes on. At exit CPython runs full collections
    while it tears the modules down, walking every object still alive: a year of ten symbols
    leaves millions (candles, orders, fills, positions). An exit hook freezes them first
    (``gc.freeze``), so those walks skip them; every object is still freed as usual, and the
    hook runs after every result was printed and written. Measured: 2.2 % of the instructions
    of a 200,000-candle backtest process that keeps its result to the end, 0.4 % of the
    benchmark's 1,051,200-candle one (which drops it first). Registered once however often
    called.
    """
    if not _ReplayGc.exit_hook:
        atexit.register(gc.freeze)
        _ReplayGc.exit_hook = True


class _ReplayGc:
    """Replays running in this process (they may overlap on one event loop): the first one
    raises the threshold, the last one puts the previous setting back."""

    active = 0
    previous: tuple[int, ...] = ()
    froze = False  # the first replay froze the objects alive then (and the last unfreezes)
    exit_hook = False  # skip_exit_scan registered its exit hook


def _trades(store: MemoryStore) -> list[TradeRecord]:
    """Closed positions that bought something, as trade records (fill times, net PnL)."""
    out: list[TradeRecord] = []
    buy = Side.BUY
    for position in store.positions.values():
        if position.closed_at is None or position.id is None:
            continue
        # one pass over the position's fills (thousands of positions): the first buy's and
        # the last sell's times, the bought amount summed in fill order
        entry_time: int | None = None
        exit_time: int | None = None
        bought = Decimal(0)
        for order in store.orders_for_position(position.id):
            for fill in store.fills_for_order(order.client_order_id):
                if fill.side is buy:
                    bought += fill.amount
                    if entry_time is None or fill.timestamp < entry_time:
                        entry_time = fill.timestamp
                elif fill.side is Side.SELL and (exit_time is None or fill.timestamp > exit_time):
                    exit_time = fill.timestamp
        if entry_time is None or exit_time is None:
            continue
        out.append(
            TradeRecord(
                symbol=position.symbol,
                entry_time=entry_time,
                entry_price=float(position.entry_price),
                exit_time=exit_time,
                exit_price=float(position.exit_price or 0),
                amount=float(bought),
                fees=float(position.fees_paid),
                pnl=float(position.realized_pnl),
                exit_reason=position.exit_reason or "",
            )
        )
    out.sort(key=lambda t: (t.exit_time, t.symbol))
    return out


def _risk(
    request: BacktestRequest, clock: SimulatedClock, state: InMemoryRiskStateStore
) -> RiskManager | StakeRiskGate:
    manager = RiskManager(
        mode=Mode.PAPER,
        params=RiskParamsStore(None, request.risk_params),
        state=state,
        decisions=None,
        clock=clock,
        execution_mode=request.execution_mode,
    )
    if request.stake_amount is None:
        if not request.fee_edge:
            raise BacktestError("--no-fee-edge needs --stake-amount")
        return manager
    return StakeRiskGate(manager, request.stake_amount, fee_edge=request.fee_edge)


async def run_backtest(
    frames: MutableMapping[str, pd.DataFrame],
    request: BacktestRequest,
    *,
    markets: Mapping[str, MarketInfo] | None = None,
    advisor_factory: AdvisorFactory | None = None,
    progress: Progress | None = None,
    on_outcome: Callable[[PipelineOutcome], None] | None = None,
    keep_prices: bool = False,
    consume: bool = False,
    dense: bool = False,
) -> BacktestResult:
    """Replay ``frames`` (symbol → candles) through the live pipeline; see :class:`EventLoop`.

    ``consume``: remove each frame from ``frames`` once its signals are computed (a year of ten
    symbols then never sits in memory twice).
    """
    started = time.perf_counter()
    if not frames:
        raise BacktestError("no candles to replay")
    if request.advisor_mode == "replay" and advisor_factory is None:
        raise BacktestError("--advisor replay needs recorded advisor answers (none available)")
    signal_engine = SignalEngine(
        request.strategy,
        request.signal_params,
        timeframe=request.timeframe,
        exchange=request.exchange,
        execution_mode=request.execution_mode,
        costs=EdgeCosts.of_params(request.risk_params),
    )
    tf = signal_engine.timeframe_ms
    markets = dict(markets or backtest_markets(frames, request.exchange))
    tracks: dict[str, SymbolTrack] = {}
    prices: dict[str, pd.DataFrame] = {}
    for symbol in list(frames):
        candles = frames.pop(symbol) if consume else frames[symbol]
        if len(candles) < 2:
            raise BacktestError(f"{symbol}: fewer than two candles in the range")
        tracks[symbol] = SymbolTrack.build(symbol, candles, signal_engine)
        if keep_prices:
            prices[symbol] = candles[["timestamp", "close"]]
    release_free_heap()  # the signal computations' freed memory, before the replay grows
    start_ms = min(int(t.timestamp[0]) for t in tracks.values())
    clock = SimulatedClock(start_ms)
    paper = PaperEngine(
        markets,
        settings=PaperSettings(exchange_id=request.exchange, slippage=request.slippage),
        clock=clock,
        balances={request.quote: request.initial_balance},
    )
    exchange = PaperExchange(paper)
    store = BacktestStore(Mode.PAPER)
    manager = ExecutionManager(
        exchange,
        store,
        clock=clock,
        config=ExecutionConfig(execution_mode=request.execution_mode, retry=NO_WAIT),
    )
    tracker = PositionTracker(manager)
    risk_state = InMemoryRiskStateStore()
    risk = _risk(request, clock, risk_state)
    portfolio = BacktestPortfolio(paper, store, tracks, request.quote, tf)
    advisor = None
    if request.advisor_mode != "off" and advisor_factory is not None:
        advisor = advisor_factory(clock, tracks, tf)
    recorder = CountingRecorder()
    feedback = PositionFeedback(risk, store)
    pipeline = DecisionPipeline(
        risk,
        manager,
        portfolio,
        advisor=advisor,
        advisor_mode=request.advisor_mode,
        recorder=recorder,
        feedback=feedback,
    )

    def after_event(symbol: str, now_ms: int, phase: int) -> None:
        feedback.sync(symbol, now_ms)
        if phase == CLOSE:  # equity as the live loop marks it, once per closed candle
            feedback.mark(portfolio.equity(now_ms), now_ms)

    def mark(now_ms: int) -> None:  # a candle between events whose mark the breakers need
        feedback.mark(portfolio.equity(now_ms), now_ms)

    at = timeline(list(tracks.values()))
    watch = BreakerWatch(
        tracks,
        at,
        tf,
        paper,
        request.quote,
        risk_state.load,
        max_drawdown_percent=request.risk_params.max_drawdown_percent,
        daily_loss_limit_percent=request.risk_params.daily_loss_limit_percent,
    )

    loop = EventLoop(
        list(tracks.values()),
        exchange=exchange,
        manager=manager,
        tracker=tracker,
        pipeline=pipeline,
        clock=clock,
        timeframe_ms=tf,
        progress=progress,
        on_outcome=on_outcome,
        after_event=after_event,
        dense=dense,
        watch=watch if watch.active and not dense else None,  # dense: every candle marked
        mark=mark,
    )
    with replay_gc():  # the loop and the trade list: see replay_gc
        stats = await loop.run()
        equity = equity_curve(
            list(tracks.values()), paper.trades.values(), float(request.initial_balance), at
        )
        trades = _trades(store)
        report = analyze(
            at,
            equity,
            trades,
            timeframe_ms=tf,
            buy_and_hold={s: (float(t.open[0]), float(t.close[-1])) for s, t in tracks.items()},
        )
    open_positions = len(store.open_positions())
    elapsed = time.perf_counter() - started
    logger.info(
        "backtest: {} candles, {} trades, {} events in {:.2f}s",
        sum(len(t) for t in tracks.values()),
        len(trades),
        stats.close_events + stats.open_events,
        elapsed,
    )
    return BacktestResult(
        request=request,
        symbols=list(tracks),
        timestamps=at,
        equity=equity,
        trades=trades,
        report=report,
        stats=stats,
        recorder=recorder,
        open_positions=open_positions,
        candles=sum(len(t) for t in tracks.values()),
        elapsed_s=elapsed,
        prices=prices,
    )


def open_positions_of(store: MemoryStore) -> list[Position]:
    """Positions still open at the end of a run."""
    return store.open_positions()
