"""Fees paid in a third currency (Binance's BNB discount) count in the PnL (issue 18, item 12).

The local venue charges fees in the quote currency only, so the exchange here is the paper
exchange answering in ccxt's shape with every fee moved to BNB (as Binance reports a trade
paid with BNB: ``fee: {cost, currency: "BNB"}``); everything from the order dicts on is the
bot's real path: the wiring, the order client, the store on the test database, the position
book, the vault.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kmg_autotrader.autopilot.wiring import BotRuntime, build_runtime, sample_markets
from kmg_autotrader.config import load_settings
from kmg_autotrader.domain import Mode, OrderIntent, Side
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.fees import SlippageModel
from kmg_autotrader.execution.paper import PaperEngine, PaperExchange, PaperSettings
from kmg_autotrader.storage.candle_store import CandleStore
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.vault import VaultReader

D = Decimal
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
SYMBOL = "BTC/USDT"
BNB_USDT = D(250)  # what the exchange charged at: 1 BNB = 250 USDT
ENTRY_FEE = D("2.0")  # 0.1 % of 0.1 BTC at 20,000
EXIT_FEE = D("1.899")  # 0.1 % of 0.1 BTC at 18,990


class BnbFeeExchange(PaperExchange):
    """The paper exchange with every fee reported in BNB, ccxt-shaped."""

    @staticmethod
    def _bnb(fee: Any) -> dict[str, Any]:
        cost = D(str(fee["cost"])) / BNB_USDT if fee and fee.get("cost") is not None else D(0)
        return {"cost": cost, "currency": "BNB"}

    def _order(self, raw: dict[str, Any]) -> dict[str, Any]:
        out = {**raw, "fee": self._bnb(raw.get("fee"))}
        if raw.get("trades"):
            out["trades"] = [self._trade(t) for t in raw["trades"]]
        return out

    def _trade(self, trade: Any) -> Any:
        return {**trade, "fee": self._bnb(trade.get("fee"))} if isinstance(trade, dict) else trade

    async def create_order(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._order(await super().create_order(*args, **kwargs))

    async def fetch_order(self, order_id: str, symbol: str) -> dict[str, Any]:
        return self._order(await super().fetch_order(order_id, symbol))

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> dict[str, Any]:
        return self._order(await super().fetch_order_by_client_id(client_order_id, symbol))

    async def fetch_my_trades(
        self, symbol: str, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        return [self._trade(t) for t in await super().fetch_my_trades(symbol, since, limit)]


def _runtime(repos: Repositories, data: Path) -> BotRuntime:
    settings = load_settings(None, data_dir=data, advisor_mode="off", symbols=[SYMBOL])
    clock = SimulatedClock(T0)
    markets = sample_markets([SYMBOL], "binance")
    engine = PaperEngine(
        markets,
        settings=PaperSettings(immediate_market=True, slippage=SlippageModel(D(0), D(0))),
        clock=clock,
        balances={"USDT": D(10_000)},
    )
    exchange = BnbFeeExchange(engine)
    return build_runtime(
        settings,
        repos,
        mode=Mode.PAPER,
        clock=clock,
        exchange=exchange,
        markets=markets,
        paper=exchange,
        quote="USDT",
    )


async def _round_trip(runtime: BotRuntime) -> None:
    """0.1 BTC bought at 20,000, stopped out at 18,990 by the bot's stop check."""
    bot = runtime.bot
    clock = bot.p.clock
    assert isinstance(clock, SimulatedClock)
    await bot.on_price(SYMBOL, 20_000.0, T0)
    intent = OrderIntent(
        Mode.PAPER, SYMBOL, Side.BUY, D("0.1"), D(20000), D(19000), D(22000), T0, reason="test"
    )
    assert (await bot.p.manager.execute(intent)).status == "filled"
    await bot.on_price(SYMBOL, 20_000.0, T0 + 60_000)
    clock.set(T0 + 120_000)
    await bot.on_price(SYMBOL, 18_990.0, T0 + 120_000)


def _fills(repos: Repositories) -> list[Any]:
    return sorted(repos.fills.recent(Mode.PAPER), key=lambda f: f.timestamp)


@pytest.mark.db
async def test_a_bnb_fee_is_valued_at_the_bots_last_bnb_price(
    repos: Repositories, tmp_path: Path
) -> None:
    runtime = _runtime(repos, tmp_path / "data")
    runtime.bot.last_prices["BNB/USDT"] = BNB_USDT  # the bot watches BNB/USDT too
    try:
        await _round_trip(runtime)
    finally:
        await runtime.stop()
    entry, exit_ = _fills(repos)
    assert entry.fee_currency == exit_.fee_currency == "BNB"  # the fee as charged, kept
    assert entry.fee == ENTRY_FEE / BNB_USDT
    assert (entry.fee_quote, entry.fee_rate) == (ENTRY_FEE, BNB_USDT)  # the conversion
    assert exit_.fee_quote == EXIT_FEE
    (closed,) = repos.positions.closed_positions(Mode.PAPER)
    gross = D("0.1") * (D(18990) - D(20000))
    assert closed.fees_paid == ENTRY_FEE + EXIT_FEE, "BNB fees are in the PnL"
    assert closed.realized_pnl == gross - ENTRY_FEE - EXIT_FEE
    assert "unvalued_fees" not in closed.extra


@pytest.mark.db
async def test_without_a_last_price_the_stored_candle_at_the_fill_prices_bnb(
    repos: Repositories, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    candles = pd.DataFrame(
        {
            "timestamp": [T0 - 300_000, T0, T0 + 300_000],
            "open": [240.0, 240.0, 300.0],
            "high": [250.0, 250.0, 300.0],
            "low": [240.0, 240.0, 300.0],
            "close": [240.0, 250.0, 300.0],
            "volume": [1.0, 1.0, 1.0],
        }
    )
    CandleStore(data).write_all("binance", "BNB/USDT", "5m", candles)
    runtime = _runtime(repos, data)
    try:
        await _round_trip(runtime)
    finally:
        await runtime.stop()
    entry, exit_ = _fills(repos)
    # each fill at the candle of its own time: 250 at T0, 250 still at T0 + 2 min
    assert (entry.fee_rate, exit_.fee_rate) == (BNB_USDT, BNB_USDT)
    (closed,) = repos.positions.closed_positions(Mode.PAPER)
    assert closed.fees_paid == ENTRY_FEE + EXIT_FEE


@pytest.mark.db
async def test_a_fee_no_price_can_value_is_kept_and_flagged_not_dropped(
    repos: Repositories, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    runtime = _runtime(repos, data)
    try:
        await _round_trip(runtime)
    finally:
        await runtime.stop()
    entry, _exit = _fills(repos)
    assert entry.fee_currency == "BNB" and entry.fee == ENTRY_FEE / BNB_USDT
    assert entry.fee_quote is None and entry.fee_rate is None
    (closed,) = repos.positions.closed_positions(Mode.PAPER)
    assert closed.extra["unvalued_fees"] == f"{(ENTRY_FEE + EXIT_FEE) / BNB_USDT} BNB"
    flagged = repos.events.recent(Mode.PAPER, kind="fee_unvalued")
    assert len(flagged) == 2, flagged  # once per fill, however often its order is synced
    anomalies = [r["data"]["kind"] for r in VaultReader(data).read("anomalies")]
    assert anomalies.count("fee_unvalued") == 2
