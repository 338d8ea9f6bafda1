"""The ccxt adapter: one object per exchange for markets, market data and (thin) order calls.

Built on ccxt's async classes (the ``ccxt.pro`` subclass when the exchange has one, so the
same object also offers WebSocket watchers). Markets are loaded once and cached; a snapshot can
be saved to / loaded from JSON so everything downstream can work offline. Every ccxt exception
leaves this module mapped to a transient or permanent :mod:`~kmg_autotrader.exchange.errors`
error; transient errors of idempotent (read-only) calls are retried with exponential backoff
and jitter, on top of ccxt's own rate limiter.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
from loguru import logger
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from kmg_autotrader.domain import MarketInfo, Mode
from kmg_autotrader.exchange.capabilities import ExchangeCapabilities, capabilities_for
from kmg_autotrader.exchange.errors import (
    AmbiguousOrderError,
    ExchangeAdapterError,
    PermanentExchangeError,
    UnknownSymbolError,
    map_ccxt_error,
)
from kmg_autotrader.exchange.markets import (
    load_markets_snapshot,
    market_info_from_ccxt,
    save_markets_snapshot,
)
from kmg_autotrader.exchange.urls import apply_url_overrides

T = TypeVar("T")

# ccxt's error messages quote the request URL, whose query carries the signature on signed
# (private) calls: such a query never reaches a log line or an error message.
_SIGNED_QUERY = re.compile(r"\?[^\s\"'<>]*?signature=[^\s\"'<>]*", re.IGNORECASE)
_SIGNATURE = re.compile(r"(signature=)[^\s&\"'<>]+", re.IGNORECASE)


def redact_signed(text: str) -> str:
    """``text`` with the query string of every signed URL (and any bare signature) removed."""
    return _SIGNATURE.sub(r"\1***", _SIGNED_QUERY.sub("?<signed query redacted>", text))


def scrub(exc: BaseException) -> BaseException:
    """Redact signed URLs from ``exc``'s own message, in place (it is chained into ours and may
    be printed in a traceback), and return it."""
    if any(isinstance(arg, str) and "signature=" in arg.lower() for arg in exc.args):
        exc.args = tuple(redact_signed(a) if isinstance(a, str) else a for a in exc.args)
    return exc


def mapped_error(exc: BaseException, context: str) -> ExchangeAdapterError:
    """:func:`map_ccxt_error` of ``exc`` with every signed URL redacted."""
    return map_ccxt_error(scrub(exc), context)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of transient errors for read-only calls (waits in seconds)."""

    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 30.0


def exchange_class(exchange_id: str) -> type[Any]:
    """The async ccxt class of ``exchange_id`` (the ccxt.pro one when it exists)."""
    exchange_id = exchange_id.lower()
    cls = getattr(ccxt_pro, exchange_id, None) or getattr(ccxt_async, exchange_id, None)
    if cls is None or exchange_id not in ccxt.exchanges:
        raise PermanentExchangeError(f"unknown exchange id {exchange_id!r} (ccxt does not know it)")
    return cls


def timeframe_ms(timeframe: str) -> int:
    """Length of a ccxt timeframe (``1s``, ``5m``, ``1h``, ``1d``…) in milliseconds."""
    try:
        seconds = ccxt.Exchange.parse_timeframe(timeframe)
    except Exception as exc:  # ccxt raises a bare Exception on bad units
        raise ValueError(f"unknown timeframe {timeframe!r}") from exc
    if not seconds or seconds <= 0:
        raise ValueError(f"unknown timeframe {timeframe!r}")
    return int(seconds * 1000)


class ExchangeAdapter:
    """A ccxt exchange behind typed, error-mapped methods. Public data needs no keys."""

    def __init__(
        self,
        exchange_id: str,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        config: dict[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        capabilities: ExchangeCapabilities | None = None,
        api_url: str | None = None,
        ws_url: str | None = None,
        sandbox: bool = False,
    ) -> None:
        self.id = exchange_id.lower()
        # applied to every client this adapter creates (REST and each stream), so no request
        # can leave for the exchange's own hosts when an override is set
        self.api_url = api_url
        self.ws_url = ws_url
        self.sandbox = sandbox
        self.capabilities = capabilities or capabilities_for(self.id)
        self.retry = retry or RetryPolicy()
        self._cls = exchange_class(self.id)
        self._config: dict[str, Any] = {
            "enableRateLimit": True,
            "options": dict(self.capabilities.ccxt_options),
        }
        for key, value in (config or {}).items():
            if key == "options":
                self._config["options"].update(value)
            else:
                self._config[key] = value
        self._credentials: dict[str, str] = {}
        if api_key and secret:
            self._credentials = {"apiKey": api_key, "secret": secret}
        self.client: Any = self._new_client()
        self._markets_lock = asyncio.Lock()
        self._market_infos: dict[str, MarketInfo] = {}

    @classmethod
    def from_settings(
        cls, settings: Any, *, mode: Mode | str | None = None, **kwargs: Any
    ) -> ExchangeAdapter:
        """Adapter for ``settings.exchange`` with the ``EXCHANGE_API_URL`` / ``EXCHANGE_WS_URL``
        / ``EXCHANGE_SANDBOX`` settings.

        The keys are handed to ccxt only when ``mode`` (default: ``TRADING_MODE``) is LIVE.
        PAPER uses public endpoints only: with keys, ccxt would sign private calls (Binance's
        load_markets asks for the coin list and margin pairs) with the live account's keys.
        """
        live = Mode(mode if mode is not None else settings.trading_mode) is Mode.LIVE
        key, secret = settings.exchange_credentials() if live else (None, None)
        kwargs.setdefault("api_url", getattr(settings, "exchange_api_url", None))
        kwargs.setdefault("ws_url", getattr(settings, "exchange_ws_url", None))
        kwargs.setdefault("sandbox", bool(getattr(settings, "exchange_sandbox", False)))
        return cls(
            settings.exchange,
            api_key=key.get_secret_value() if key is not None else None,
            secret=secret.get_secret_value() if secret is not None else None,
            **kwargs,
        )

    def _new_client(self) -> Any:
        client = self._cls({**self._config, **self._credentials})
        if self.sandbox:  # first: it swaps in the test URLs that an override then moves
            client.set_sandbox_mode(True)
        apply_url_overrides(client, self.api_url, self.ws_url)
        return client

    def new_stream_client(self) -> Any:
        """A fresh ccxt.pro instance for one WebSocket stream, sharing the loaded markets.

        Streams own their instance so a stalled socket can be closed without touching the
        others or the REST session.
        """
        client = self._new_client()
        if self.client.markets:
            client.set_markets(self.client.markets, self.client.currencies or None)
        return client

    @property
    def has_websocket(self) -> bool:
        """True when ccxt.pro supports this exchange."""
        return hasattr(ccxt_pro, self.id)

    @property
    def rate_limit_ms(self) -> float:
        """ccxt's minimum delay between requests for this exchange."""
        return float(self.client.rateLimit)

    def milliseconds(self) -> int:
        """The exchange object's clock (UTC epoch ms)."""
        return int(self.client.milliseconds())

    async def close(self) -> None:
        """Close HTTP sessions and WebSockets."""
        try:
            await self.client.close()
        except Exception as exc:  # closing must never mask the caller's own error
            logger.debug("{} close failed: {}", self.id, scrub(exc))

    async def __aenter__(self) -> ExchangeAdapter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- calls -----------------------------------------------------------------------------

    async def _call(
        self, context: str, func: Callable[[], Awaitable[T]], *, retry: bool = True
    ) -> T:
        """Run a ccxt call, retrying transient failures of idempotent calls."""
        attempts = self.retry.attempts if retry else 1

        def _log(state: Any) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if exc is not None:
                scrub(exc)
            logger.warning("{} {}: {} (attempt {})", self.id, context, exc, state.attempt_number)

        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(attempts),
                # "Full jitter": spreads retries of many clients after a shared outage.
                wait=wait_random_exponential(
                    multiplier=self.retry.initial_wait, max=self.retry.max_wait
                ),
                retry=retry_if_exception(
                    lambda e: isinstance(e, ccxt.OperationFailed | TimeoutError)
                ),
                before_sleep=_log,
                reraise=True,
            ):
                with attempt:
                    return await func()
        except (ccxt.BaseError, TimeoutError) as exc:
            raise mapped_error(exc, f"{self.id} {context}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- markets ---------------------------------------------------------------------------

    async def load_markets(
        self, *, reload: bool = False, cache_path: Path | str | None = None
    ) -> dict[str, MarketInfo]:
        """Load markets once (or from ``cache_path`` if it exists), then serve from memory.

        With ``cache_path``, markets fetched from the network are also saved there.
        """
        async with self._markets_lock:
            if self._market_infos and not reload:
                return self._market_infos
            if cache_path is not None and Path(cache_path).is_file() and not reload:
                self.load_markets_snapshot(cache_path)
                return self._market_infos
            await self._call("load_markets", lambda: self.client.load_markets(reload))
            self._index_markets()
            if cache_path is not None:
                save_markets_snapshot(cache_path, self.id, self.client.markets)
            logger.info("{}: {} markets loaded", self.id, len(self._market_infos))
            return self._market_infos

    def load_markets_snapshot(self, path: Path | str) -> dict[str, MarketInfo]:
        """Use markets from a JSON snapshot instead of the network."""
        exchange_id, markets = load_markets_snapshot(path)
        if exchange_id is not None and exchange_id != self.id:
            raise PermanentExchangeError(
                f"markets snapshot {path} is for {exchange_id!r}, not {self.id!r}"
            )
        self.client.set_markets(markets)
        self._index_markets()
        return self._market_infos

    def save_markets_snapshot(self, path: Path | str) -> Path:
        """Save the loaded markets as a JSON snapshot."""
        if not self.client.markets:
            raise PermanentExchangeError("no markets loaded to save")
        return save_markets_snapshot(path, self.id, self.client.markets)

    def _index_markets(self) -> None:
        mode = int(self.client.precisionMode)
        self._market_infos = {
            symbol: market_info_from_ccxt(market, mode)
            for symbol, market in self.client.markets.items()
            if market.get("spot", True)
        }

    @property
    def markets_loaded(self) -> bool:
        """True once markets are available (network or snapshot)."""
        return bool(self._market_infos)

    @property
    def symbols(self) -> list[str]:
        """Unified spot symbols of the loaded markets."""
        return sorted(self._market_infos)

    def market(self, symbol: str) -> dict[str, Any]:
        """The raw ccxt market of ``symbol``."""
        try:
            return dict(self.client.market(symbol))
        except ccxt.BaseError as exc:
            raise UnknownSymbolError(f"{self.id} has no market {symbol!r}", cause=exc) from exc

    def market_info(self, symbol: str) -> MarketInfo:
        """Precision, limits and fees of ``symbol`` (markets must be loaded)."""
        try:
            return self._market_infos[symbol]
        except KeyError:
            hint = "" if self._market_infos else " (markets are not loaded)"
            raise UnknownSymbolError(f"{self.id} has no spot market {symbol!r}{hint}") from None

    def require_symbols(self, symbols: list[str]) -> None:
        """Raise :class:`UnknownSymbolError` listing every symbol the exchange does not have."""
        unknown = [s for s in symbols if s not in self._market_infos]
        if unknown:
            raise UnknownSymbolError(f"{self.id} has no market {', '.join(unknown)}")

    def amount_to_precision(self, symbol: str, amount: Decimal | float | str) -> Decimal:
        """``amount`` truncated to the market's amount precision (ccxt's own rules)."""
        self.market_info(symbol)
        try:
            return Decimal(self.client.amount_to_precision(symbol, str(amount)))
        except ccxt.BaseError as exc:  # e.g. below the minimum after truncation
            raise mapped_error(exc, f"{self.id} amount_to_precision {symbol}") from exc

    def price_to_precision(self, symbol: str, price: Decimal | float | str) -> Decimal:
        """``price`` rounded to the market's price precision (ccxt's own rules)."""
        self.market_info(symbol)
        try:
            return Decimal(self.client.price_to_precision(symbol, str(price)))
        except ccxt.BaseError as exc:
            raise mapped_error(exc, f"{self.id} price_to_precision {symbol}") from exc

    # ---- public market data ----------------------------------------------------------------

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None = None, limit: int | None = None
    ) -> list[list[float]]:
        """Raw ccxt candles ``[ts, o, h, l, c, v]`` from ``since`` (retried when transient)."""
        rows = await self._call(
            f"fetch_ohlcv {symbol} {timeframe}",
            lambda: self.client.fetch_ohlcv(symbol, timeframe, since, limit),
        )
        return list(rows)

    async def fetch_trades(
        self,
        symbol: str,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Raw ccxt public trades (retried when transient)."""
        rows = await self._call(
            f"fetch_trades {symbol}",
            lambda: self.client.fetch_trades(symbol, since, limit, params or {}),
        )
        return list(rows)

    async def fetch_time(self) -> int:
        """The exchange's server time (UTC epoch ms; retried when transient)."""
        value = await self._call("fetch_time", lambda: self.client.fetch_time())
        if value is None:
            raise PermanentExchangeError(f"{self.id} fetch_time: no server time in the answer")
        return int(value)

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        """ccxt ticker of ``symbol`` (retried when transient)."""
        ticker = await self._call(
            f"fetch_ticker {symbol}", lambda: self.client.fetch_ticker(symbol)
        )
        return dict(ticker)

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        """ccxt order book of ``symbol`` (retried when transient)."""
        book = await self._call(
            f"fetch_order_book {symbol}", lambda: self.client.fetch_order_book(symbol, limit)
        )
        return dict(book)

    # ---- private calls (thin; the execution layer owns the logic) -----------------------------

    async def fetch_balance(self) -> dict[str, Any]:
        """ccxt balance structure (needs keys; retried when transient)."""
        balance = await self._call("fetch_balance", lambda: self.client.fetch_balance())
        return dict(balance)

    async def create_order(
        self,
        symbol: str,
        side: str,
        order_type: str,
        amount: Decimal,
        price: Decimal | None = None,
        *,
        client_order_id: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send an order once (never retried: a retry could double it).

        The amount and price are rounded with ccxt's precision helpers (amount truncated,
        price to the tick) before anything is sent; an amount that truncates to nothing raises
        :class:`InvalidOrderError` and sends nothing. A network failure or timeout raises
        :class:`AmbiguousOrderError`: the order may or may not exist; resolve it with
        :meth:`fetch_order_by_client_id`.
        """
        extra = dict(params or {})
        if client_order_id is not None:
            extra.setdefault("clientOrderId", client_order_id)
        if not self._market_infos:
            await self.load_markets()
        sent_amount = self.amount_to_precision(symbol, amount)
        sent_price = None if price is None else self.price_to_precision(symbol, price)
        if sent_amount != Decimal(str(amount)) or (
            price is not None and sent_price != Decimal(str(price))
        ):
            logger.info(
                "{} {}: order rounded to the market precision: {} @ {} -> {} @ {}",
                self.id,
                symbol,
                amount,
                price,
                sent_amount,
                sent_price,
            )
        try:
            order = await self.client.create_order(
                symbol,
                order_type,
                side,
                float(sent_amount),
                None if sent_price is None else float(sent_price),
                extra,
            )
        except ccxt.NetworkError as exc:
            scrub(exc)
            raise AmbiguousOrderError(
                f"{self.id} create_order {symbol} {client_order_id}: outcome unknown ({exc})",
                cause=exc,
            ) from exc
        except ccxt.BaseError as exc:
            raise mapped_error(exc, f"{self.id} create_order {symbol}") from exc
        return dict(order)

    async def cancel_order(self, order_id: str, symbol: str) -> dict[str, Any]:
        """Cancel by exchange order id (retried when transient: cancelling twice is safe)."""
        order = await self._call(
            f"cancel_order {order_id}", lambda: self.client.cancel_order(order_id, symbol)
        )
        return dict(order)

    async def fetch_order(self, order_id: str, symbol: str) -> dict[str, Any]:
        """An order by exchange id."""
        order = await self._call(
            f"fetch_order {order_id}", lambda: self.client.fetch_order(order_id, symbol)
        )
        return dict(order)

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> dict[str, Any]:
        """An order by our client order id (ccxt's unified ``clientOrderId`` param)."""
        order = await self._call(
            f"fetch_order client id {client_order_id}",
            lambda: self.client.fetch_order(None, symbol, {"clientOrderId": client_order_id}),
        )
        return dict(order)

    async def fetch_my_trades(
        self, symbol: str, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Our own fills of ``symbol``."""
        rows = await self._call(
            f"fetch_my_trades {symbol}", lambda: self.client.fetch_my_trades(symbol, since, limit)
        )
        return list(rows)


__all__ = [
    "ExchangeAdapter",
    "ExchangeAdapterError",
    "RetryPolicy",
    "exchange_class",
    "mapped_error",
    "redact_signed",
    "scrub",
    "timeframe_ms",
]
