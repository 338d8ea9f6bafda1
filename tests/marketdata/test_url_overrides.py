"""EXCHANGE_API_URL / EXCHANGE_WS_URL move every ccxt URL of a real exchange class to one host."""

from __future__ import annotations

import ccxt.pro as ccxt_pro
import pytest

from kmg_autotrader.exchange.urls import api_url_overrides, apply_url_overrides, default_ws_url


def _all_urls(value: object) -> list[str]:
    if isinstance(value, dict):
        return [u for item in value.values() for u in _all_urls(item)]
    return [value] if isinstance(value, str) and "://" in value else []


@pytest.mark.parametrize("exchange_id", ["binance", "kraken"])
async def test_every_api_url_points_at_the_override(exchange_id: str) -> None:
    client = getattr(ccxt_pro, exchange_id)()
    try:
        apply_url_overrides(client, "http://127.0.0.1:8765")
        urls = _all_urls(client.urls["api"])
        assert urls
        for url in urls:
            assert url.startswith(("http://127.0.0.1:8765", "ws://127.0.0.1:8765")), url
        other = getattr(ccxt_pro, exchange_id)()  # a second instance keeps the real URLs
        assert not any("127.0.0.1" in u for u in _all_urls(other.urls["api"]))
        await other.close()
    finally:
        await client.close()


def test_paths_are_kept() -> None:
    binance = ccxt_pro.binance()
    urls = api_url_overrides(binance.urls["api"], "http://127.0.0.1:9000")
    assert urls["public"] == "http://127.0.0.1:9000/api/v3"
    assert urls["sapi"] == "http://127.0.0.1:9000/sapi/v1"
    assert urls["ws"]["spot"] == "ws://127.0.0.1:9000/ws"
    kraken = ccxt_pro.kraken()
    urls = api_url_overrides(kraken.urls["api"], "https://venue.test", "ws://127.0.0.1:9001")
    assert urls["public"] == "https://venue.test"
    assert urls["ws"]["publicV2"] == "ws://127.0.0.1:9001/v2"


def test_bad_override_urls_are_refused() -> None:
    assert default_ws_url("https://x.test:1") == "wss://x.test:1"
    with pytest.raises(ValueError, match="absolute"):
        api_url_overrides({}, "127.0.0.1:8000")
    with pytest.raises(ValueError, match="absolute"):
        api_url_overrides({}, "http://127.0.0.1:8000", "http://127.0.0.1:8001")
    with pytest.raises(ValueError, match="needs EXCHANGE_API_URL"):
        apply_url_overrides(object(), None, "ws://127.0.0.1:1")
