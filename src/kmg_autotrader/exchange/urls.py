"""Pointing a ccxt exchange class at another host (``EXCHANGE_API_URL`` / ``EXCHANGE_WS_URL``).

One rule for every exchange, no per-exchange table: each URL in the class's ``urls['api']``
keeps its path and gets the override's scheme, host and port. REST URLs (``https://…``) take
``api_url``; WebSocket URLs (``wss://…``) take ``ws_url``, which defaults to ``api_url`` with
``http`` → ``ws`` (``https`` → ``wss``). So ``EXCHANGE_API_URL=http://127.0.0.1:8765`` sends
Binance's ``https://api.binance.com/api/v3`` to ``http://127.0.0.1:8765/api/v3`` and its
``wss://stream.binance.com:9443/ws`` to ``ws://127.0.0.1:8765/ws``; Kraken's
``https://api.kraken.com`` to ``http://127.0.0.1:8765`` and ``wss://ws.kraken.com/v2`` to
``ws://127.0.0.1:8765/v2``. The local exchange venue (``kmg venue``) serves those paths.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit


def _origin(url: str, *, websocket: bool) -> tuple[str, str]:
    """(scheme, netloc) of an override URL; raises ValueError when it is not absolute."""
    parts = urlsplit(url.strip())
    allowed = {"ws", "wss"} if websocket else {"http", "https"}
    if parts.scheme not in allowed or not parts.netloc:
        wanted = "ws:// or wss://" if websocket else "http:// or https://"
        raise ValueError(f"{url!r} is not an absolute {wanted} URL")
    return parts.scheme, parts.netloc


def default_ws_url(api_url: str) -> str:
    """The WebSocket origin that goes with a REST origin (``http`` → ``ws``)."""
    scheme, netloc = _origin(api_url, websocket=False)
    return urlunsplit(("wss" if scheme == "https" else "ws", netloc, "", "", ""))


def _rewrite(value: Any, rest: tuple[str, str], ws: tuple[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _rewrite(item, rest, ws) for key, item in value.items()}
    if not isinstance(value, str):
        return value
    parts = urlsplit(value)
    if parts.scheme in ("http", "https"):
        scheme, netloc = rest
    elif parts.scheme in ("ws", "wss"):
        scheme, netloc = ws
    else:
        return value  # not a URL (ccxt keeps a few plain strings here)
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def api_url_overrides(
    default_urls: dict[str, Any], api_url: str, ws_url: str | None = None
) -> dict[str, Any]:
    """A copy of ccxt's ``urls['api']`` with every REST and WebSocket URL moved to the overrides."""
    rest = _origin(api_url, websocket=False)
    ws = _origin(ws_url or default_ws_url(api_url), websocket=True)
    result = _rewrite(default_urls, rest, ws)
    assert isinstance(result, dict)
    return result


def apply_url_overrides(client: Any, api_url: str | None, ws_url: str | None = None) -> None:
    """Point a ccxt client's API (and WebSocket) URLs at the overrides; no-op without them."""
    if not api_url and not ws_url:
        return
    if not api_url:
        raise ValueError("EXCHANGE_WS_URL needs EXCHANGE_API_URL as well")
    client.urls["api"] = api_url_overrides(client.urls["api"], api_url, ws_url)
