"""PAPER never hands the keys to ccxt (no signed request), and no signed URL is ever logged or
put in an error message, against the fake Binance (real ccxt class)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from loguru import logger

from kmg_autotrader.config import load_settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.exchange import ExchangeAdapter, ExchangeAdapterError, RetryPolicy
from kmg_autotrader.exchange.adapter import redact_signed
from kmg_autotrader.execution.ccxt_orders import CcxtExchange
from tests.fakes.fake_exchange_orders import FakeOrderExchange

PRIVATE = ("/sapi/", "/api/v3/account", "/api/v3/order", "/api/v3/openOrders", "/api/v3/myTrades")
FAST = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02)
KEYS = {"binance_api_key": "live-key-abcdef", "binance_secret_key": "live-secret-abcdef"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOrderExchange]:
    server = await FakeOrderExchange().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="DEBUG")
    try:
        yield lines
    finally:
        logger.remove(sink)


def _adapter(fake: FakeOrderExchange, trading_mode: Mode, **kwargs: Any) -> ExchangeAdapter:
    settings = load_settings(None, exchange_api_url=fake.base, trading_mode=trading_mode, **KEYS)
    return ExchangeAdapter.from_settings(settings, config={"timeout": 1500}, retry=FAST, **kwargs)


@pytest.mark.parametrize(
    ("trading_mode", "kwargs"),
    [(Mode.PAPER, {}), (Mode.LIVE, {"mode": Mode.PAPER})],  # TRADING_MODE, or the run's mode
    ids=["trading-mode-paper", "paper-run-of-live-settings"],
)
async def test_paper_with_keys_set_makes_no_signed_request(
    fake: FakeOrderExchange,
    log_lines: list[str],
    trading_mode: Mode,
    kwargs: dict[str, Any],
) -> None:
    fake.inject("/sapi/", "status", times=10, status=500)  # a refused private call would log
    adapter = _adapter(fake, trading_mode, **kwargs)
    try:
        await adapter.load_markets()
        await adapter.fetch_ticker("BTC/USDT")
        assert not adapter.client.apiKey and not adapter.client.secret
    finally:
        await adapter.close()
    assert fake.requests, "the fake saw no request at all"
    private = [p for p in fake.requests if p.startswith(PRIVATE) or "signature=" in p]
    assert private == []
    output = "\n".join(log_lines)
    assert "signature" not in output and "live-key" not in output


async def test_live_signs_but_no_signed_url_reaches_a_log_line_or_an_error(
    fake: FakeOrderExchange, log_lines: list[str]
) -> None:
    adapter = _adapter(fake, Mode.LIVE, mode=Mode.LIVE)
    try:
        await adapter.load_markets()
        exchange = CcxtExchange(adapter)
        assert (await exchange.fetch_balance())["total"]["USDT"] == pytest.approx(10_000)
        fake.inject("/api/v3/account", "status", times=5, status=500)  # retried, then raised
        with pytest.raises(ExchangeAdapterError) as raised:
            await exchange.fetch_balance()
        fake.inject("/api/v3/openOrders", "status", times=5, status=500)  # retried, raised
        with pytest.raises(ExchangeAdapterError) as raised_direct:
            await exchange.fetch_open_orders("BTC/USDT")
    finally:
        await adapter.close()
    assert any("signature=" in p for p in fake.requests)  # LIVE does sign
    retry_lines = [line for line in log_lines if "fetch_balance" in line and "attempt" in line]
    assert retry_lines, log_lines
    for error in (raised.value, raised_direct.value):
        texts = [str(error), str(error.__cause__), str(getattr(error, "cause", ""))]
        assert "/api/v3/" in texts[0]  # the URL is still there to debug with, its query is not
        assert all("signature" not in text for text in texts), texts
    assert "signature" not in "\n".join(log_lines)


def test_redaction_keeps_the_url_and_drops_the_signed_query() -> None:
    text = (
        "binance GET http://127.0.0.1:1/api/v3/account?timestamp=1&recvWindow=10000"
        "&signature=0123abcd 500 Internal Server Error {} and signature=ff00"
    )
    redacted = redact_signed(text)
    assert "0123abcd" not in redacted and "ff00" not in redacted and "timestamp" not in redacted
    assert "http://127.0.0.1:1/api/v3/account?<signed query redacted>" in redacted
    public = "GET https://api.binance.com/api/v3/klines?symbol=BTCUSDT&interval=1m"
    assert redact_signed(public) == public
