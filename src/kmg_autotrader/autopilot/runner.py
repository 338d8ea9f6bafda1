"""``kmg demo`` and ``kmg run``: open the database, wire the bot, drive it, stop cleanly.

SIGINT/SIGTERM stop new decisions, let in-flight order handling finish, flush alerts and exit
0 within a few seconds. A restart continues where it stopped (positions, orders, risk state
and the paper ledger are stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
from loguru import logger

from kmg_autotrader.autopilot.bot import BotSummary
from kmg_autotrader.autopilot.connect import StartupReport, connect_with_retry
from kmg_autotrader.autopilot.demo_defaults import DEMO_SPEED, DEMO_START
from kmg_autotrader.autopilot.feeds import Feed, LiveFeed, ReplayFeed
from kmg_autotrader.autopilot.lifecycle import install_stop_signals
from kmg_autotrader.autopilot.wiring import BotRuntime, build_runtime, sample_markets
from kmg_autotrader.config import Settings
from kmg_autotrader.domain import MarketInfo, Mode
from kmg_autotrader.domain.clock import Clock, SimulatedClock, WallClock
from kmg_autotrader.exchange.clock import ExchangeClock
from kmg_autotrader.execution.paper import FileLedger, PaperEngine, PaperExchange, PaperSettings
from kmg_autotrader.sample_data import gap_report, load_sample_set
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories

DEMO_DB = "demo.sqlite"
DEMO_BOOK = "demo_paper_exchange.json"
DEMO_RECORDS = "demo"
# DATA_DIR/demo/vault and DATA_DIR/demo/snapshots: never the real bot's
WebStarter = Callable[
    [Settings, Repositories, BotRuntime], Awaitable[Callable[[], Awaitable[None]]]
]


if TYPE_CHECKING:
    from kmg_autotrader.execution.manager import ExecutionManager
    from kmg_autotrader.execution.reconcile import Reconciler

T = TypeVar("T")


# Wall seconds each shutdown step may take (services: alerts flush, advisor and exchange
# sessions); past it the step is abandoned as a crash would abandon it.
STOP_STEP_S = 8.0


async def _bounded(step: Awaitable[object], what: str, seconds: float = STOP_STEP_S) -> None:
    """Await one shutdown step for at most ``seconds``; log and go on when it fails or hangs."""
    try:
        await asyncio.wait_for(step, timeout=seconds)
    except TimeoutError:
        logger.warning("stopping: {} took over {:g} s; abandoned", what, seconds)
    except Exception as exc:
        logger.warning("stopping: {} failed: {}: {}", what, type(exc).__name__, exc)


async def _unless_stopped(work: Coroutine[Any, Any, T], stop: asyncio.Event) -> T | None:
    """``work``'s result, or None when ``stop`` is set first (``work`` is then cancelled, as a
    crash at that point would end it: nothing half-done is left that a restart cannot redo)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


RECONCILE_EVERY_S = 180.0


async def _reconcile_later(reconciler: Reconciler, manager: ExecutionManager) -> None:
    """The periodic reconciliation, from one interval after the start-up pass (its loop would
    repeat that pass at once: on Kraken 6 s of throttled private calls ahead of the first
    order), or sooner when an order's outcome turns ambiguous."""
    wake = asyncio.Event()
    manager.orders.unresolved_listeners.append(lambda _coid: wake.set())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout=RECONCILE_EVERY_S)
    await reconciler.run_forever(RECONCILE_EVERY_S)


def demo_paths(settings: Settings) -> tuple[Path, Path]:
    """The demo's own SQLite file and paper book under DATA_DIR (never the real paper account)."""
    return settings.data_dir / DEMO_DB, settings.data_dir / DEMO_BOOK


async def _drive(
    runtime: BotRuntime,
    feed: Feed,
    stop: asyncio.Event,
    *,
    web: WebStarter | None,
    settings: Settings,
    repos: Repositories,
    on_progress: Callable[[], None] | None = None,
) -> BotSummary:
    stop_web: Callable[[], Awaitable[None]] | None = None
    progress_task: asyncio.Task[None] | None = None
    await runtime.start()
    try:
        if web is not None:
            stop_web = await web(settings, repos, runtime)
        if on_progress is not None:

            async def tick() -> None:
                while not stop.is_set():
                    on_progress()
                    await asyncio.sleep(0.5)

            progress_task = asyncio.create_task(tick())
        return await runtime.bot.run(feed, stop)
    finally:
        if progress_task is not None:
            progress_task.cancel()
        if stop_web is not None:
            await _bounded(stop_web(), "the dashboard")
        await _bounded(runtime.stop(), "the services (alerts, advisor)")
        logger.debug("stopping: services stopped")


async def run_demo(
    settings: Settings,
    *,
    sample_set: str = "btc-usdt",
    speed: float = DEMO_SPEED,
    web: WebStarter | None = None,
    limit: int | None = None,
    stop: asyncio.Event | None = None,
    on_feed: Callable[[ReplayFeed], Callable[[], None]] | None = None,
    resume: bool = False,
    start: int | None = None,
    on_status: Callable[[ReplayFeed, BotSummary], None] | None = None,
) -> BotSummary:
    """Replay a packaged sample set through the live loop on a simulated clock (PAPER).

    The demo keeps its own database (``DATA_DIR/demo.sqlite``) and paper book, so it never
    touches a real paper account. They start fresh unless ``resume`` is True: then the replay
    continues after the last candle the previous run processed, with its positions, orders
    and risk state, exactly as ``kmg run`` continues after a restart.

    ``start`` is the candle (per symbol, counted from the set's first) the replay starts at;
    the candles before it warm the strategy up, as ``kmg run`` warms up on history. The
    default (:data:`DEMO_START`) is measured so that the default demo trades within its
    first minute (issue 19). ``limit`` caps the candles replayed per symbol, from ``start``.
    ``on_status`` is called with the feed and the live counts about twice a second.
    """
    frames = load_sample_set(sample_set)
    tf_ms = 300_000  # the packaged sets are 5m candles
    first = min(int(f["timestamp"].iloc[0]) for f in frames.values())
    offset = DEMO_START.get(sample_set, 0) if start is None else start
    cut = first + offset * tf_ms
    before = {s: f[f["timestamp"] < cut] for s, f in frames.items()}
    frames = {s: f[f["timestamp"] >= cut].reset_index(drop=True) for s, f in frames.items()}
    if limit is not None:
        frames = {s: f.iloc[:limit].reset_index(drop=True) for s, f in frames.items()}
    for line in gap_report(frames).splitlines():
        logger.info("sample data: {}", line)
    symbols = list(frames)
    quote = symbols[0].split("/")[1]
    demo_settings = settings.model_copy(
        update={"symbols": symbols, "timeframe": "5m", "trading_mode": Mode.PAPER}
    )
    db_path, book_path = demo_paths(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    records_dir = settings.data_dir / DEMO_RECORDS
    if not resume:
        for path in (db_path, book_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
            path.unlink(missing_ok=True)
        shutil.rmtree(records_dir, ignore_errors=True)  # the previous demo's vault, snapshots
    database = open_database(f"sqlite:///{db_path.resolve()}")
    repos = Repositories(database)
    last_point = repos.equity.latest(Mode.PAPER) if resume else None
    resume_at = last_point.timestamp if last_point is not None else None
    clock = SimulatedClock(resume_at if resume_at is not None else cut)
    assert tf_ms == demo_settings.timeframe_ms
    warmup: dict[str, pd.DataFrame] = before
    if resume_at is not None:
        # candles that closed at or before the resume point were processed: warm up on them
        warmup = {
            s: pd.concat([before[s], f[f["timestamp"] + tf_ms <= resume_at]], ignore_index=True)
            for s, f in frames.items()
        }
        frames = {
            s: f[f["timestamp"] + tf_ms > resume_at].reset_index(drop=True)
            for s, f in frames.items()
        }
        logger.info("demo: resuming after {}", resume_at)
    markets = sample_markets(symbols, settings.exchange)
    start_balance = (
        Decimal(str(settings.paper_starting_balance))
        if quote == settings.paper_quote_currency
        else Decimal(1)  # a BTC-quoted set starts with 1 BTC
    )
    engine = PaperEngine(
        markets,
        settings=PaperSettings(exchange_id=settings.exchange),
        clock=clock,
        ledger=FileLedger(book_path, repos.balances),
        balances={quote: start_balance},
    )
    paper = PaperExchange(engine)
    runtime = build_runtime(
        demo_settings,
        repos,
        mode=Mode.PAPER,
        clock=clock,
        exchange=paper,
        markets=markets,
        paper=paper,
        quote=quote,
        records_dir=records_dir,
    )
    for symbol, history in warmup.items():
        if len(history):
            runtime.bot.p.engine.warm_up(symbol, history)
            runtime.bot.p.history.warm(symbol, history)
            runtime.bot.last_prices[symbol] = Decimal(str(history["close"].iloc[-1]))
    from kmg_autotrader.execution.reconcile import Reconciler
    from kmg_autotrader.execution.recovery import recover

    # the same start-up recovery as `kmg run`; the paper book is local and never late, so
    # one "not found" proves an order absent
    manager = runtime.bot.p.manager
    reconciler = Reconciler(manager, symbols=tuple(symbols), lost_after=1, lost_window_ms=0)
    await recover(manager, reconciler, runtime.risk)
    feed = ReplayFeed(frames, tf_ms, clock=clock, speed=speed)
    stop = stop or asyncio.Event()
    install_stop_signals(stop)
    logger.info(
        "demo: replaying {} ({} symbols, {} time steps) at {} PAPER, start balance {} {}",
        sample_set,
        len(symbols),
        feed.total_steps,
        f"{speed:g} candles/s" if speed else "full speed",
        start_balance,
        quote,
    )
    try:
        return await _drive(
            runtime,
            feed,
            stop,
            web=web,
            settings=demo_settings,
            repos=repos,
            on_progress=_progress(feed, runtime.bot.summary, on_feed, on_status),
        )
    finally:
        database.dispose()


def _progress(
    feed: ReplayFeed,
    summary: BotSummary,
    on_feed: Callable[[ReplayFeed], Callable[[], None]] | None,
    on_status: Callable[[ReplayFeed, BotSummary], None] | None,
) -> Callable[[], None] | None:
    """One callable for the progress ticker: the feed's update, then the status callback."""
    update = on_feed(feed) if on_feed is not None else None
    if update is None and on_status is None:
        return None

    def tick() -> None:
        if update is not None:
            update()
        if on_status is not None:
            on_status(feed, summary)

    return tick


async def run_live(
    settings: Settings,
    *,
    live_flag: bool,
    web: WebStarter | None = None,
    stop: asyncio.Event | None = None,
    warmup_candles: int = 1000,
    clock: Clock | None = None,
    web_while_unreachable: bool = False,
) -> BotSummary:
    """Run the bot on the configured exchange until SIGINT/SIGTERM.

    An exchange that cannot be reached at start is retried with backoff (2 s doubling to 60 s;
    each failure logged, recorded as an ``exchange_unreachable`` error event and alerted, and
    with ``web_while_unreachable`` a dashboard reads that health from the records meanwhile).
    Raises :class:`ExchangeUnreachableError` after EXCHANGE_UNREACHABLE_EXIT_SECONDS of it
    (never with 0). ``clock`` is the exchange's time as the bot sees it (default: an
    :class:`ExchangeClock` that follows the exchange's server time): a venue replaying at speed
    runs ahead of the wall, and the bot must neither call its candles future nor its history
    incomplete.
    """
    from kmg_autotrader.collector.history import HistoryDownloader
    from kmg_autotrader.exchange import ExchangeAdapter
    from kmg_autotrader.execution.ccxt_orders import CcxtExchange
    from kmg_autotrader.execution.live_guard import ensure_live_allowed
    from kmg_autotrader.execution.reconcile import Reconciler
    from kmg_autotrader.execution.recovery import recover
    from kmg_autotrader.execution.runtime import open_paper_exchange
    from kmg_autotrader.storage.candle_store import CandleStore

    mode = settings.trading_mode
    if mode is Mode.LIVE or live_flag:
        ensure_live_allowed(settings, live_flag)
        mode = Mode.LIVE
    # first of all: a SIGTERM during the start-up (downloads, reconciliation) is a clean stop
    stop = stop or asyncio.Event()
    install_stop_signals(stop)
    database = open_database(settings.database_url)
    repos = Repositories(database)
    adapter = ExchangeAdapter.from_settings(settings, mode=mode)
    exchange_clock = ExchangeClock(adapter.fetch_time) if clock is None else None
    clock = clock or exchange_clock or WallClock()

    store = CandleStore(settings.data_dir)

    async def reach() -> dict[str, MarketInfo]:
        """Markets, the exchange's time and the warm-up history: one start-up attempt."""
        assert clock is not None
        markets_all = await adapter.load_markets(
            cache_path=settings.data_dir / "markets" / f"{settings.exchange}.json"
        )
        adapter.require_symbols(settings.symbols)
        if exchange_clock is not None:
            if adapter.client.has.get("fetchTime"):
                # cached markets prove nothing, and the clock would settle for the local one
                await adapter.fetch_time()
            await exchange_clock.start()
        downloader = HistoryDownloader(adapter, store, clock=clock.now_ms)
        for symbol in settings.symbols:
            since = clock.now_ms() - warmup_candles * settings.timeframe_ms
            await downloader.download(symbol, settings.timeframe, since)
        return {s: markets_all[s] for s in settings.symbols}

    async def prepare() -> tuple[BotRuntime, LiveFeed]:
        assert clock is not None
        markets = await connect_with_retry(
            reach,
            StartupReport(settings, repos, mode, web=web_while_unreachable),
            give_up_after_s=settings.exchange_unreachable_exit_seconds,
        )
        start_after: dict[str, int | None] = {}
        quote = settings.symbols[0].split("/")[1]
        if mode is Mode.PAPER:
            paper: PaperExchange | None = open_paper_exchange(
                settings, repos, markets, market_data=adapter, clock=clock
            )
            exchange: Any = paper
        else:
            paper = None
            exchange = CcxtExchange(adapter)
        runtime = build_runtime(
            settings,
            repos,
            mode=mode,
            clock=clock,
            exchange=exchange,
            markets=markets,
            paper=paper,
            quote=quote,
        )
        bot = runtime.bot
        for symbol in settings.symbols:
            frame = store.read(adapter.id, symbol, settings.timeframe)
            frame = frame.iloc[-warmup_candles:]
            if len(frame):
                bot.p.engine.warm_up(symbol, frame)
                # the advisor's market context too: else its prompts say "n/a" for a day
                bot.p.history.warm(symbol, frame)
                start_after[symbol] = int(frame["timestamp"].iloc[-1])
            else:
                start_after[symbol] = None
        reconciler = Reconciler(runtime.bot.p.manager, symbols=tuple(settings.symbols))
        # reconcile first: an order the last process sent but never heard back about is found
        # (and then watched) or left to the reconciler, never polled blind
        await recover(runtime.bot.p.manager, reconciler, runtime.risk)
        runtime.extra_tasks.append(
            asyncio.create_task(_reconcile_later(reconciler, runtime.bot.p.manager))
        )
        if exchange_clock is not None:
            runtime.extra_tasks.append(asyncio.create_task(exchange_clock.run()))

        async def on_event(kind: str, message: str, details: dict[str, Any]) -> None:
            repos.events.add(mode, kind, message, source="collector", details=details)
            if kind in {"rest_fallback", "ws_stalled", "ws_failed"}:
                bot.p.health.feed_status = "rest_fallback"
                runtime.alerts.send("feed_degraded", feed="candles", status=kind, detail=message)
            elif kind == "ws_connected":
                bot.p.health.feed_status = "websocket"

        feed = LiveFeed(
            adapter,
            settings.symbols,
            settings.timeframe,
            start_after=start_after,
            on_event=on_event,
            store=store,
            clock=clock.now_ms,
            observe=exchange_clock.observe if exchange_clock is not None else None,
        )
        return runtime, feed

    try:
        prepared = await _unless_stopped(prepare(), stop)
        if prepared is None:
            logger.info("stopped during the start-up: nothing was traded")
            return BotSummary()
        runtime, feed = prepared
        return await _drive(runtime, feed, stop, web=web, settings=settings, repos=repos)
    finally:
        await _bounded(adapter.close(), "closing the exchange sessions", 3.0)
        database.dispose()
