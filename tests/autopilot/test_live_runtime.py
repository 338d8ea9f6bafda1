"""A LIVE runtime (build_runtime over CcxtExchange, the real ccxt Binance class, the fake
exchange) takes its balances from the exchange: its equity is the exchange's, it enters where
PAPER enters on the same candles, and the balances table shows the exchange's figures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kmg_autotrader.autopilot.feeds import CandleHandler, ClosedCandle, PriceHandler, ReplayFeed
from kmg_autotrader.autopilot.wiring import BotRuntime, build_runtime, sample_markets
from kmg_autotrader.config import Settings, load_settings
from kmg_autotrader.domain import MarketInfo, Mode
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.exchange import ExchangeAdapter, RetryPolicy
from kmg_autotrader.execution.ccxt_orders import CcxtExchange
from kmg_autotrader.execution.paper import PaperEngine, PaperExchange, PaperSettings
from kmg_autotrader.execution.reconcile import Reconciler
from kmg_autotrader.sample_data import load_sample_set
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from tests.fakes.fake_exchange_orders import FakeOrderExchange

SYMBOL = "BTC/USDT"
TF = 300_000
# packaged real candles (BTC/USDT 5m, Jan 2023): the strategy warms up on the first 3,900 and
# then sees 130 in which PAPER enters twice (found by replaying the whole set once)
WARM, END = 3_900, 4_030
START_USDT = Decimal(10_000)


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = load_sample_set("btc-usdt")[SYMBOL]
    return frame.iloc[:WARM], frame.iloc[WARM:END].reset_index(drop=True)


def _settings(data_dir: Path) -> Settings:
    return load_settings(
        None, data_dir=data_dir, symbols=[SYMBOL], timeframe="5m", advisor_mode="off"
    )


class FakeMarketFeed:
    """Replays candles and moves the fake exchange's market with them: a decision taken on a
    close is filled at the next candle's open, as the paper exchange fills it in a replay."""

    def __init__(self, window: pd.DataFrame, clock: SimulatedClock, fake: FakeOrderExchange):
        self.inner = ReplayFeed({SYMBOL: window}, TF, clock=clock, speed=0)
        opens = [*window["open"].tolist()[1:], window["close"].iloc[-1]]
        self.fill_price = dict(zip(window["timestamp"].tolist(), opens, strict=True))
        self.fake = fake

    async def run(
        self,
        on_candle: CandleHandler,
        on_price: PriceHandler,
        stop: asyncio.Event,
        *,
        on_open: CandleHandler | None = None,
    ) -> None:
        async def candle(event: ClosedCandle) -> object:
            self.fake.trade(Decimal(str(self.fill_price[event.candle.timestamp])))
            return await on_candle(event)

        await self.inner.run(candle, on_price, stop)  # a live feed has no open-time call


async def _run(runtime: BotRuntime, warm: pd.DataFrame, feed: Any) -> None:
    runtime.bot.p.engine.warm_up(SYMBOL, warm)
    runtime.bot.last_prices[SYMBOL] = Decimal(str(warm["close"].iloc[-1]))
    await runtime.start()
    try:
        await runtime.bot.run(feed, asyncio.Event())
    finally:
        await runtime.stop()


def _entries(repos: Repositories, mode: Mode) -> list[tuple[int, bool, str]]:
    rows = repos.risk_decisions.recent(mode, limit=1000)
    return sorted(
        (r["timestamp"], r["approved"], r["reason_code"]) for r in rows if r["side"] == "buy"
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeOrderExchange]:
    server = await FakeOrderExchange(usdt=START_USDT).start()
    try:
        yield server
    finally:
        await server.stop()


async def _paper(tmp_path: Path) -> Repositories:
    warm, window = _frames()
    settings = _settings(tmp_path / "paper")
    repos = Repositories(open_database(f"sqlite:///{tmp_path / 'paper.sqlite'}"))
    clock = SimulatedClock(int(window["timestamp"].iloc[0]))
    markets = sample_markets([SYMBOL], "binance")
    engine = PaperEngine(
        markets,
        settings=PaperSettings(exchange_id="binance"),
        clock=clock,
        balances={"USDT": START_USDT},
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
        quote="USDT",
    )
    await _run(runtime, warm, ReplayFeed({SYMBOL: window}, TF, clock=clock, speed=0))
    return repos


async def test_live_equity_is_the_exchanges_and_it_enters_where_paper_enters(
    fake: FakeOrderExchange, tmp_path: Path
) -> None:
    paper_repos = await _paper(tmp_path)
    warm, window = _frames()
    clock = SimulatedClock(int(window["timestamp"].iloc[0]))
    fake.engine.clock = clock  # the exchange stamps fills in the replayed time too
    fake.trade(Decimal(str(warm["close"].iloc[-1])))
    adapter = ExchangeAdapter(
        "binance",
        config=fake.binance_config(),
        retry=RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02),
    )
    repos = Repositories(open_database(f"sqlite:///{tmp_path / 'live.sqlite'}"))
    try:
        await adapter.load_markets()
        exchange = CcxtExchange(adapter)
        markets: dict[str, MarketInfo] = {SYMBOL: adapter.market_info(SYMBOL)}
        runtime = build_runtime(
            _settings(tmp_path / "live"),
            repos,
            mode=Mode.LIVE,
            clock=clock,
            exchange=exchange,
            markets=markets,
            paper=None,
            quote="USDT",
        )
        await _run(runtime, warm, FakeMarketFeed(window, clock, fake))
        # a reconciler pass reads the balances too: a deposit shows up in the table
        fake.engine.balances["USDT"][0] += Decimal(5)
        await Reconciler(runtime.bot.p.manager, symbols=(SYMBOL,)).run()
    finally:
        await adapter.close()

    paper_entries, live_entries = _entries(paper_repos, Mode.PAPER), _entries(repos, Mode.LIVE)
    assert sum(approved for _, approved, _ in paper_entries) >= 2
    assert live_entries == paper_entries  # same candles, same verdicts (no "equity 0")
    first = repos.risk_decisions.recent(Mode.LIVE, limit=1000)[-1]
    assert Decimal(str(first["checks"]["equity"])) == START_USDT  # the exchange's balance
    summary = runtime.bot.summary
    assert summary.entries >= 2 and fake.creates >= 2 * summary.entries - 1

    truth = fake.engine.balance()["total"]
    table = {b.currency: b.total for b in repos.balances.all(Mode.LIVE) if b.total != 0}
    assert table == {c: Decimal(str(v)) for c, v in truth.items() if v}
    assert table["USDT"] > 0
    last = repos.equity.latest(Mode.LIVE)
    assert last is not None and summary.last_equity == last.equity
    btc = Decimal(str(truth.get("BTC", 0)))
    assert last.equity == table["USDT"] - 5 + btc * Decimal(str(window["close"].iloc[-1]))
