"""Markets are loaded once, cached, and can be saved to / loaded from a JSON snapshot so that
risk and execution work offline."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kmg_autotrader.exchange import ExchangeAdapter, PermanentExchangeError
from tests.fakes.fake_exchange import FakeExchange

from .conftest import FAST_RETRY, KRAKEN_SNAPSHOT


def _market_calls(fake: FakeExchange) -> int:
    return sum("exchangeInfo" in r for r in fake.requests)


async def test_markets_load_once_save_and_work_offline_from_the_snapshot(
    fake: FakeExchange, tmp_path: Path
) -> None:
    snapshot = tmp_path / "markets" / "binance.json"
    online = ExchangeAdapter("binance", config=fake.binance_config(), retry=FAST_RETRY)
    try:
        infos = await online.load_markets(cache_path=snapshot)
        assert _market_calls(fake) == 1 and snapshot.is_file()
        await online.load_markets()  # cached in memory: no second request
        assert _market_calls(fake) == 1
        btc = online.market_info("BTC/USDT")
        assert btc.min_cost > 0 and btc.amount_step > 0 and btc.taker_fee > 0
    finally:
        await online.close()

    # a second process: the cache file answers, the network is never asked
    offline = ExchangeAdapter("binance", config=fake.binance_config(), retry=FAST_RETRY)
    try:
        assert await offline.load_markets(cache_path=snapshot) == infos
        assert _market_calls(fake) == 1
        # ccxt's precision helpers work from the snapshot: step 0.00001, tick 0.01
        assert offline.amount_to_precision("BTC/USDT", "0.123456789") == Decimal("0.12345")
        assert offline.price_to_precision("BTC/USDT", "65000.12345") == Decimal("65000.12")
    finally:
        await offline.close()

    # without a network at all (no URLs), the snapshot alone is enough
    cut_off = ExchangeAdapter("binance")
    try:
        assert cut_off.load_markets_snapshot(snapshot) == infos
        assert cut_off.symbols == sorted(infos)
        again = tmp_path / "again.json"
        cut_off.save_markets_snapshot(again)
        assert ExchangeAdapter("binance").load_markets_snapshot(again) == infos
    finally:
        await cut_off.close()


async def test_snapshot_of_another_exchange_is_refused(fake: FakeExchange, tmp_path: Path) -> None:
    snapshot = tmp_path / "binance.json"
    online = ExchangeAdapter("binance", config=fake.binance_config(), retry=FAST_RETRY)
    try:
        await online.load_markets(cache_path=snapshot)
    finally:
        await online.close()
    kraken = ExchangeAdapter("kraken")
    try:
        with pytest.raises(PermanentExchangeError, match="binance"):
            kraken.load_markets_snapshot(snapshot)
        assert not kraken.markets_loaded
    finally:
        await kraken.close()


@pytest.mark.parametrize(
    "content", ["{not json", "[1, 2]", '{"exchange": "binance", "markets": {"BTC/USDT": 1}}']
)
async def test_a_broken_snapshot_names_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content)
    adapter = ExchangeAdapter("binance")
    try:
        with pytest.raises(ValueError, match=r"broken\.json"):
            adapter.load_markets_snapshot(path)
    finally:
        await adapter.close()


async def test_saving_without_markets_is_a_clear_error() -> None:
    adapter = ExchangeAdapter("binance")
    try:
        with pytest.raises(PermanentExchangeError, match="no markets"):
            adapter.save_markets_snapshot("unused.json")
    finally:
        await adapter.close()


async def test_kraken_markets_load_with_the_real_class_and_map_xbt_to_btc(
    fake: FakeExchange, tmp_path: Path
) -> None:
    """Kraken's own names (XXBT, XBTUSDT) come out as the unified BTC/USDT, equal to the
    offline snapshot in tests/data."""
    adapter = ExchangeAdapter("kraken", config=fake.kraken_config(), retry=FAST_RETRY)
    try:
        infos = await adapter.load_markets(cache_path=tmp_path / "kraken.json")
        assert list(infos) == ["BTC/USDT"]
        assert adapter.market("BTC/USDT")["id"] == "XBTUSDT"
        assert fake.requests == ["/0/public/Assets", "/0/public/AssetPairs"]
    finally:
        await adapter.close()
    shipped = ExchangeAdapter("kraken")
    try:
        assert shipped.load_markets_snapshot(KRAKEN_SNAPSHOT) == infos
    finally:
        await shipped.close()


def test_precision_modes_match_ccxt_and_snapshots_do_not_import_ccxt() -> None:
    import subprocess
    import sys

    from ccxt.base import decimal_to_precision as ccxt_precision

    from kmg_autotrader.exchange import markets

    assert markets.DECIMAL_PLACES == ccxt_precision.DECIMAL_PLACES
    assert markets.SIGNIFICANT_DIGITS == ccxt_precision.SIGNIFICANT_DIGITS
    assert markets.TICK_SIZE == ccxt_precision.TICK_SIZE
    # the backtester and the paper exchange never load ccxt (seconds and ~90 MB per process)
    code = "import sys, kmg_autotrader.backtest.runner; print('ccxt' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
