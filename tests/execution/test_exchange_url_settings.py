"""EXCHANGE_API_URL / EXCHANGE_WS_URL / EXCHANGE_SANDBOX: validated, shown, and applied by the
adapter to every ccxt client it makes (REST and each stream), against the local fake."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kmg_autotrader.config import ConfigError, load_settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.exchange import ExchangeAdapter
from tests.fakes.fake_exchange import random_walk_candles
from tests.fakes.fake_exchange_orders import FakeOrderExchange

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000
T0 = 1_700_000_040_000 // MIN * MIN


@pytest.fixture
async def fake() -> AsyncIterator[FakeOrderExchange]:
    server = await FakeOrderExchange(now_ms=T0 + 30 * MIN).start()
    server.set_klines("BTCUSDT", "1m", random_walk_candles(T0, 60, MIN, seed=5))
    try:
        yield server
    finally:
        await server.stop()


def _errors(**overrides: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(None, **overrides)
    return info.value.lines


def test_defaults_and_accepted_values() -> None:
    settings = load_settings(None)
    assert settings.exchange_api_url is None and settings.exchange_ws_url is None
    assert settings.exchange_sandbox is False
    settings = load_settings(
        None,
        exchange_api_url="http://127.0.0.1:8765/",
        exchange_ws_url="",
        exchange_sandbox="true",
    )
    assert settings.exchange_api_url == "http://127.0.0.1:8765"
    assert settings.exchange_ws_url is None and settings.exchange_sandbox is True
    shown = settings.masked()
    assert shown["EXCHANGE_API_URL"] == "http://127.0.0.1:8765"
    assert shown["EXCHANGE_WS_URL"] == "(unset)" and shown["EXCHANGE_SANDBOX"] == "True"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"exchange_api_url": "127.0.0.1:8765"}, "EXCHANGE_API_URL: must be an absolute http"),
        ({"exchange_api_url": "ws://127.0.0.1:8765"}, "EXCHANGE_API_URL: must be an absolute"),
        ({"exchange_api_url": "http://127.0.0.1:8765/api/v3"}, "EXCHANGE_API_URL: give scheme"),
        ({"exchange_api_url": "http://127.0.0.1:99999"}, "EXCHANGE_API_URL: bad port"),
        (
            {"exchange_api_url": "http://127.0.0.1:1", "exchange_ws_url": "http://127.0.0.1:2"},
            "EXCHANGE_WS_URL: must be an absolute ws:// or wss:// URL",
        ),
        ({"exchange_ws_url": "ws://127.0.0.1:2"}, "EXCHANGE_WS_URL is set but EXCHANGE_API_URL"),
        ({"exchange_sandbox": "maybe"}, "EXCHANGE_SANDBOX"),
        ({"exchange": "kraken", "exchange_sandbox": True}, "no sandbox (testnet) for kraken"),
    ],
)
def test_bad_values_give_one_clear_line(overrides: dict[str, object], needle: str) -> None:
    lines = _errors(**overrides)
    assert len(lines) == 1 and needle in lines[0], lines


def _kmg(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "COLUMNS": "200", "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    return subprocess.run(
        [sys.executable, "-m", "kmg_autotrader", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_config_check_shows_them_and_refuses_a_bad_url_with_exit_2() -> None:
    good = _kmg(
        "config",
        "check",
        env={"EXCHANGE_API_URL": "http://127.0.0.1:8765", "EXCHANGE_SANDBOX": "true"},
    )
    assert good.returncode == 0, good.stderr
    for row in ("EXCHANGE_API_URL", "http://127.0.0.1:8765", "EXCHANGE_WS_URL", "EXCHANGE_SANDBOX"):
        assert row in good.stdout
    bad = _kmg("config", "check", env={"EXCHANGE_API_URL": "localhost:8765"})
    assert bad.returncode == 2
    assert "Traceback" not in bad.stdout + bad.stderr
    lines = [line for line in bad.stderr.splitlines() if line.strip().startswith("- ")]
    assert len(lines) == 1 and "EXCHANGE_API_URL" in lines[0]


async def test_api_url_alone_points_rest_and_every_stream_client_at_the_fake(
    fake: FakeOrderExchange,
) -> None:
    settings = load_settings(None, exchange_api_url=fake.base)
    adapter = ExchangeAdapter.from_settings(settings, config={"timeout": 1500})
    stream = None
    try:
        await adapter.load_markets()
        assert "BTC/USDT" in adapter.symbols
        rows = await adapter.fetch_ohlcv("BTC/USDT", "1m", since=T0, limit=5)
        assert [int(r[0]) for r in rows] == [T0 + i * MIN for i in range(5)]
        stream = adapter.new_stream_client()
        assert stream.urls["api"]["ws"]["spot"] == f"ws://127.0.0.1:{fake.port}/ws"
        watch = asyncio.create_task(stream.watch_ohlcv("BTC/USDT", "1m"))
        for _ in range(200):  # until the socket subscribed
            if any(streams for _, streams in fake.ws_clients):
                break
            await asyncio.sleep(0.01)
        assert await fake.push_kline("BTCUSDT", "1m", T0 + 29 * MIN, final=True) == 1
        (candle, *_) = await asyncio.wait_for(watch, 5)
        assert candle[0] == T0 + 29 * MIN
        assert all(path.startswith(("/api/v3/", "/ws/")) for path in fake.requests)
    finally:
        if stream is not None:
            await stream.close()
        await adapter.close()


async def test_sandbox_first_then_the_url_override(fake: FakeOrderExchange) -> None:
    sandbox_only = ExchangeAdapter.from_settings(load_settings(None, exchange_sandbox=True))
    stream = sandbox_only.new_stream_client()
    try:
        assert sandbox_only.client.urls["api"]["public"].startswith("https://testnet.binance")
        assert stream.urls["api"]["ws"]["spot"].startswith("wss://stream.testnet.binance")
        assert sandbox_only.client.options["sandboxMode"] is True
    finally:
        await stream.close()
        await sandbox_only.close()
    # both: ccxt's sandbox rules (no sapi calls on the testnet) with the override's host
    settings = load_settings(
        None,
        exchange_sandbox=True,
        exchange_api_url=fake.base,
        trading_mode=Mode.LIVE,
        binance_api_key="testnet-key",
        binance_secret_key="testnet-secret",
    )
    adapter = ExchangeAdapter.from_settings(settings, config={"timeout": 1500})
    try:
        await adapter.load_markets()
        balance = await adapter.fetch_balance()
        assert balance["total"]["USDT"] == pytest.approx(10_000)
        assert not any(path.startswith("/sapi/") for path in fake.requests), fake.requests
        assert any(path.startswith("/api/v3/account") for path in fake.requests)
    finally:
        await adapter.close()
