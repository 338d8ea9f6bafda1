"""The venue process: one HTTP/WebSocket server on 127.0.0.1, one exchange dialect, the replay
loop, fault gates, WebSocket fan-out and the control endpoint under ``/venue/``.

:class:`Venue` wires the parts: the data's symbols get their market rules from the dialect's
packaged snapshot, :class:`~kmg_autotrader.venue.market.MarketState` replays the candles on a
:class:`~kmg_autotrader.venue.clock.VenueClock`, :class:`~kmg_autotrader.venue.accounts.Accounts`
holds the books, :class:`~kmg_autotrader.venue.faults.FaultPlan` says what goes wrong. A
dialect (``binance.BinanceDialect``, ``kraken.KrakenDialect``) speaks one exchange's wire
format: routes, signatures, error bodies, streams.

Control endpoint (loopback only, header ``X-Venue-Token``): ``GET /venue/state``,
``GET /venue/books?api_key=``, ``GET|POST|DELETE /venue/faults``, ``POST /venue/clock``
(``{"to": ms}``, ``{"ms": delta}`` or ``{"step": n}``), ``POST /venue/restart``
(``{"delay": s}``). :class:`VenueClient` is its Python client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib
import json
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import ClientSession, ClientTimeout, WSMsgType, web
from loguru import logger

from kmg_autotrader.domain import MarketInfo
from kmg_autotrader.execution.fees import FeeSchedule
from kmg_autotrader.venue.accounts import Account, Accounts, generate_keys, read_state
from kmg_autotrader.venue.clock import VenueClock, wall_ms
from kmg_autotrader.venue.faults import Fault, FaultError, FaultPlan, fault_from_json
from kmg_autotrader.venue.market import Candle, MarketState, infer_step_ms

if TYPE_CHECKING:
    import pandas as pd

DIALECTS = {
    "binance": "kmg_autotrader.venue.binance:BinanceDialect",
    "kraken": "kmg_autotrader.venue.kraken:KrakenDialect",
}
TOKEN_HEADER = "X-Venue-Token"
# What marks a request as signed (carrying an account's credentials) in either dialect: a
# PAPER bot must never send one, and tests count them per path.
_CREDENTIAL_HEADERS = ("X-MBX-APIKEY", "API-Key", "API-Sign")
_LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


class VenueError(ValueError):
    """The venue cannot start or do what was asked (one clear line)."""


class DropConnection(Exception):  # a control-flow signal, not an error
    """Raised by a handler to close the TCP connection without any answer."""


def http_error(
    status: int, body: Any, headers: Mapping[str, str] | None = None
) -> web.HTTPException:
    """An aiohttp exception answering ``status`` with a JSON ``body`` (418 included)."""
    exc = web.HTTPException(
        text=json.dumps(body), content_type="application/json", headers=dict(headers or {})
    )
    exc.set_status(status)
    return exc


@dataclass
class AccountSpec:
    """An account to open at start: credentials and starting balances."""

    api_key: str
    secret: str
    balances: dict[str, Decimal] = field(default_factory=dict)


# ---- WebSocket fan-out ---------------------------------------------------------------------


@dataclass(eq=False)
class WsConnection:
    """One client WebSocket and the topics it subscribed to (dialect-defined strings)."""

    ws: web.WebSocketResponse
    path: str
    topics: set[str] = field(default_factory=set)
    state: dict[str, Any] = field(default_factory=dict)  # for the dialect's own use


class WsHub:
    """Every open stream socket of a venue, broadcasting with the WS faults applied.

    Faults are drawn once per broadcast message (not per socket) so a seeded chaos run is
    reproducible: ``ws_drop`` closes every socket, ``ws_stall`` discards messages for ``delay``
    s, ``ws_duplicate`` sends the message twice, ``ws_reorder`` holds it back and sends it after
    the next one, ``latency`` sends it ``delay`` s late, ``restart`` restarts the venue.
    """

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.connections: list[WsConnection] = []
        self.connects = 0
        self._stalled_until = 0.0
        self._held: tuple[str, Any, Callable[[WsConnection, Any], Any] | None] | None = None

    async def serve(
        self,
        request: web.Request,
        on_message: Callable[[WsConnection, Any], Awaitable[None]],
        on_open: Callable[[WsConnection], Awaitable[None]] | None = None,
    ) -> web.WebSocketResponse:
        """Accept a WebSocket and hand every JSON text message to ``on_message``."""
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        conn = WsConnection(ws, request.path)
        self.connections.append(conn)
        self.connects += 1
        try:
            if on_open is not None:
                await on_open(conn)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                await on_message(conn, data)
        finally:
            if conn in self.connections:
                self.connections.remove(conn)
        return ws

    async def send(self, conn: WsConnection, payload: Any) -> bool:
        """Send ``payload`` to one socket (no fault drawn: replies to the client's requests)."""
        if conn.ws.closed:
            return False
        try:
            await conn.ws.send_str(json.dumps(payload))
            return True
        except (ConnectionError, RuntimeError):
            return False

    async def broadcast(
        self,
        topic: str,
        payload: Any,
        render: Callable[[WsConnection, Any], Any] | None = None,
    ) -> int:
        """Send ``payload`` to every socket subscribed to ``topic`` (``render(conn, payload)``
        shapes it per socket when given); returns receivers."""
        targets = [c for c in self.connections if topic in c.topics and not c.ws.closed]
        if not targets:
            return 0
        if time.monotonic() < self._stalled_until:
            return 0
        fault = self.venue.faults.draw("ws")
        if fault is not None:
            if fault.kind == "ws_drop":
                await self.close_all()
                return 0
            if fault.kind == "ws_stall":
                self._stalled_until = time.monotonic() + (fault.delay or 1.0)
                return 0
            if fault.kind == "restart":
                self.venue.schedule_restart(fault.delay)
                return 0
            if fault.kind == "latency":
                await asyncio.sleep(fault.delay)
            if fault.kind == "ws_reorder" and self._held is None:
                self._held = (topic, payload, render)
                return 0
        sent = 0
        for conn in targets:
            message = render(conn, payload) if render else payload
            if await self.send(conn, message):
                sent += 1
                if fault is not None and fault.kind == "ws_duplicate":
                    await self.send(conn, message)
        if self._held is not None and self._held[1] is not payload:
            held_topic, held, held_render = self._held
            self._held = None
            for conn in self.connections:
                if held_topic in conn.topics:
                    await self.send(conn, held_render(conn, held) if held_render else held)
        return sent

    async def close_all(self, code: int = 1001, message: bytes = b"venue closed") -> int:
        """Close every socket (a network drop, a restart or the end); returns how many."""
        closing = list(self.connections)
        self.connections.clear()
        self._held = None
        for conn in closing:
            with contextlib.suppress(Exception):
                await conn.ws.close(code=code, message=message)
        return len(closing)


# ---- dialects -----------------------------------------------------------------------------


class Dialect:
    """One exchange's wire format on top of the venue's core. Subclasses set ``name`` and
    ``fees`` and implement :meth:`market_rules`, :meth:`add_routes` and :meth:`error_response`;
    they may override :meth:`on_tick` / :meth:`on_candle` to stream (they are market listeners).
    """

    name = ""
    fees = FeeSchedule(maker=Decimal("0.001"), taker=Decimal("0.001"))
    default_quote = "USDT"

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.hub = WsHub(venue)

    def market_rules(self, symbols: Sequence[str]) -> dict[str, MarketInfo]:
        """Market rules of ``symbols`` from the packaged snapshot; raise :class:`VenueError`
        naming a symbol that has none."""
        raise NotImplementedError

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register the exchange's REST and WebSocket paths."""
        raise NotImplementedError

    def error_response(self, fault: Fault, retry_after: int | None = None) -> web.HTTPException:
        """The exchange's answer to a ``rate_limit``/``ban``/``server_error`` fault."""
        raise NotImplementedError

    def wire_order_id(self, paper_id: str) -> str:
        """The id clients see for the books' order ``paper_id`` (the exchange's id format)."""
        return paper_id

    def wire_trade_id(self, paper_id: str) -> str:
        """The id clients see for the books' trade ``paper_id``."""
        return paper_id

    async def on_tick(self, symbol: str, price: Decimal, ts: int) -> None:
        """Market listener: a trade price (stream tickers from here)."""

    async def on_candle(self, symbol: str, row: Candle, final: bool) -> None:
        """Market listener: a base candle update (stream candles from here)."""

    async def close(self) -> None:
        """Close the dialect's sockets (stop and restart)."""
        await self.hub.close_all()


def load_dialect(exchange: str) -> type[Dialect]:
    """The dialect class of ``exchange`` (imported on demand)."""
    try:
        target = DIALECTS[exchange]
    except KeyError:
        raise VenueError(
            f"unknown exchange {exchange!r}; choose one of {', '.join(DIALECTS)}"
        ) from None
    module, _, name = target.partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type) and issubclass(cls, Dialect)
    return cls


class _AccountsListener:
    """Feeds every replayed tick to the matching engines (before the dialect broadcasts)."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    async def on_tick(self, symbol: str, price: Decimal, ts: int) -> None:
        self.accounts.on_price(symbol, price, ts)

    async def on_candle(self, symbol: str, row: Candle, final: bool) -> None:
        return None


# ---- the venue ----------------------------------------------------------------------------


class Venue:
    """A local exchange: ``exchange`` dialect over replayed ``data`` (symbol → candles).

    ``speed``: venue ms per wall ms (0 = manual clock). ``warmup``: candles in the past at
    start. ``accounts``: the accounts to open (default: one with generated keys and
    ``balance`` of ``quote``). ``faults``: the fault plan. ``state_path``: the books' file.
    ``control_token``: the control endpoint's token (default: generated). ``start_ms``: venue
    time at start (default: the wall clock). ``tick_interval``: wall seconds between replay
    steps when the clock runs.
    """

    def __init__(
        self,
        exchange: str = "binance",
        data: Mapping[str, pd.DataFrame] | None = None,
        speed: float = 1.0,
        warmup: int = 1000,
        accounts: Sequence[AccountSpec] | None = None,
        faults: FaultPlan | None = None,
        *,
        balance: Decimal = Decimal(10_000),
        quote: str | None = None,
        state_path: Path | None = None,
        control_token: str | None = None,
        start_ms: int | None = None,
        tick_interval: float = 0.25,
    ) -> None:
        if not data:
            raise VenueError("the venue needs candles to replay (data)")
        self.exchange = exchange
        self.dialect = load_dialect(exchange)(self)
        self.rules = self.dialect.market_rules(list(data))
        step_ms = infer_step_ms(data)
        # a venue restarted on its state file resumes its timeline: the same candles at the same
        # times, and venue time never earlier than when it stopped
        saved = (
            read_state(state_path, exchange).get("venue", {})
            if state_path and state_path.exists()
            else {}
        )
        resume = (
            start_ms is None
            and saved.get("symbols") == list(data)
            and saved.get("step_ms") == step_ms
            and "shift_ms" in saved
        )
        if resume:
            start_ms = max(wall_ms(), int(saved.get("now_ms", 0)))
        self.clock = VenueClock(start_ms=start_ms, speed=speed, step_ms=step_ms)
        self.market = MarketState(
            data,
            start_ms=self.clock.start_ms,
            warmup=warmup,
            price_steps={s: m.price_step for s, m in self.rules.items()},
            shift_ms=int(saved["shift_ms"]) if resume else None,
        )
        self.faults = faults or FaultPlan()
        self.accounts = Accounts(exchange, self.rules, self.dialect.fees, self.clock, state_path)
        self.accounts.meta.update(
            symbols=list(data), step_ms=step_ms, shift_ms=self.market.shift_ms
        )
        self.resumed = resume
        self.quote = quote or self.dialect.default_quote
        specs = list(accounts or [])
        # keys the user did not give (generated now or at an earlier start, kept in the state
        # file) are printed at start: they are test keys of a local venue
        self.generated_keys = not specs
        known = {s.api_key for s in specs}
        for key, secret in self.accounts.restored_keys():  # a restart re-opens every account
            if key not in known:
                specs.append(AccountSpec(key, secret))
                known.add(key)
        if not specs:
            key, secret = generate_keys()
            specs.append(AccountSpec(key, secret))
        for spec in specs:
            self.accounts.add(spec.api_key, spec.secret, spec.balances or {self.quote: balance})
        self.control_token = control_token or secrets.token_urlsafe(24)
        self.tick_interval = tick_interval
        self.market.subscribe(_AccountsListener(self.accounts))
        self.market.subscribe(self.dialect)
        self.app = web.Application(middlewares=[self._drop_middleware])
        self.dialect.add_routes(self.app.router)
        self._add_control_routes(self.app.router)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._restart_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._replayed_ms = self.clock.start_ms
        self.port = 0
        self.listening = False  # False while stopped or restarting
        self.requests: Counter[str] = Counter()  # "METHOD /path" → count (what clients ask)
        self.signed_requests: Counter[str] = Counter()  # the same, of requests with credentials
        self.restarts = 0
        self._finished_logged = False

    # ---- lifecycle --------------------------------------------------------------------------

    @property
    def default_account(self) -> Account:
        """The first account (the one ``kmg venue`` prints)."""
        return next(iter(self.accounts))

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (what ``EXCHANGE_API_URL`` is set to)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT``."""
        return f"ws://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1:``port`` (0 = any free port), start the replay; returns the port."""
        self._runner = self._new_runner()
        await self._runner.setup()
        await self._listen(port)
        await self._replay_to(self.clock.now_ms(), first=True)
        self._loop_task = asyncio.create_task(self._replay_loop(), name="venue-replay")
        logger.info(
            "venue {} listening on {} ({} symbols, speed {}, venue time {})",
            self.exchange,
            self.base_url,
            len(self.market.symbols),
            self.clock.speed,
            self.clock.now_ms(),
        )
        return self.port

    def _new_runner(self) -> web.AppRunner:
        # a short shutdown: a restart closes every socket at once, and a request held back by
        # a fault (timeout_after_accept) must not keep a stop waiting
        return web.AppRunner(self.app, handle_signals=False, access_log=None, shutdown_timeout=0.5)

    async def _listen(self, port: int) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await self._site.start()
        server = self._site._server  # aiohttp keeps the bound socket here
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.listening = True

    async def stop(self) -> None:
        """Stop the replay, close every socket and the server (books are saved)."""
        for task in (self._loop_task, self._restart_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.dialect.close()
        self.listening = False
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.accounts.save()
        logger.info("venue {} stopped", self.exchange)

    async def restart(self, delay: float = 0.0) -> None:
        """Close every socket (REST and WS) like a venue restart; keep the books; listen again
        on the same port after ``delay`` s."""
        if self._runner is None:
            return
        self.restarts += 1
        self.listening = False
        logger.warning("venue restart #{}: closing every connection", self.restarts)
        self.accounts.save()
        await self.dialect.close()
        port = self.port
        await self._runner.cleanup()
        if delay > 0:
            await asyncio.sleep(delay)
        self._runner = self._new_runner()
        await self._runner.setup()
        await self._listen(port)

    def schedule_restart(self, delay: float = 0.0, after: float = 0.0) -> None:
        """Restart ``after`` s from now, outside the current request or broadcast."""

        async def later() -> None:
            if after > 0:
                await asyncio.sleep(after)
            await self.restart(delay)

        if self._restart_task is None or self._restart_task.done():
            self._restart_task = asyncio.create_task(later(), name="venue-restart")

    # ---- replay -----------------------------------------------------------------------------

    async def _replay_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            if self.clock.manual:
                continue
            try:
                await self._replay_to(self.clock.now_ms())
            except Exception:  # one bad step must not end the replay of a long-running venue
                logger.exception("venue replay step failed")

    async def _replay_to(self, now: int, *, first: bool = False) -> None:
        async with self._lock:
            after = self._replayed_ms
            if now < after or (now == after and not first):
                return
            await self.market.replay(after if not first else now, now)
            self._replayed_ms = now
        if self.market.finished(now) and not self._finished_logged:
            self._finished_logged = True
            logger.warning(
                "venue replay reached the end of the data: the market is quiet from now on "
                "(flat candles at the last close, no trades)"
            )

    async def advance(
        self, to: int | None = None, ms: int | None = None, step: int | None = None
    ) -> int:
        """Move venue time (manual clock) and replay what happened; returns venue time."""
        if to is not None:
            self.clock.advance_to(to)
        elif ms is not None:
            self.clock.advance_to(self.clock.now_ms() + ms)
        else:
            self.clock.step(step or 1)
        now = self.clock.now_ms()
        await self._replay_to(now)
        return now

    # ---- fault gates ------------------------------------------------------------------------

    async def gate(self, endpoint: str) -> Fault | None:
        """Apply the fault a request for ``endpoint`` meets: sleep (latency), raise the
        dialect's error (429, 418, 5xx), drop the connection (restart), or hand back a fault
        the handler applies itself (``timeout_after_accept``, ``partial_fill``)."""
        banned = self.faults.banned()
        if banned is not None:
            raise self.dialect.error_response(Fault(kind="ban", endpoint=endpoint), banned)
        fault = self.faults.draw(endpoint)
        if fault is None:
            return None
        if fault.kind == "latency":
            await asyncio.sleep(fault.delay)
            return None
        if fault.kind in ("rate_limit", "ban", "server_error"):
            raise self.dialect.error_response(fault, fault.retry_after)
        if fault.kind == "restart":
            self.schedule_restart(fault.delay)
            raise DropConnection
        return fault

    async def late_answer(self, fault: Fault) -> None:
        """After a ``timeout_after_accept`` order was placed: answer ``delay`` s late, or drop
        the connection when ``delay`` is 0."""
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
            return
        raise DropConnection

    @web.middleware
    async def _drop_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        key = f"{request.method} {request.path}"
        self.requests[key] += 1
        if "signature" in request.query or any(h in request.headers for h in _CREDENTIAL_HEADERS):
            self.signed_requests[key] += 1
        try:
            return await handler(request)
        except DropConnection:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError from None

    # ---- control endpoint -------------------------------------------------------------------

    def _add_control_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/venue/state", self._control(self._state))
        router.add_get("/venue/books", self._control(self._books))
        router.add_get("/venue/faults", self._control(self._faults_get))
        router.add_post("/venue/faults", self._control(self._faults_post))
        router.add_delete("/venue/faults", self._control(self._faults_delete))
        router.add_post("/venue/clock", self._control(self._clock_post))
        router.add_post("/venue/restart", self._control(self._restart_post))

    def _control(
        self, handler: Callable[[web.Request], Awaitable[Any]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            if request.remote not in _LOOPBACK:
                return web.json_response({"error": "loopback only"}, status=403)
            token = request.headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(token.encode(), self.control_token.encode()):
                return web.json_response({"error": f"missing or wrong {TOKEN_HEADER}"}, status=401)
            try:
                return web.json_response(await handler(request))
            except (VenueError, FaultError, ValueError, KeyError) as exc:
                return web.json_response({"error": str(exc).strip("'\"")}, status=400)

        return wrapped

    def state(self) -> dict[str, Any]:
        """Clock, symbols and a summary of every account (``GET /venue/state``)."""
        now = self.clock.now_ms()
        return {
            "exchange": self.exchange,
            "now_ms": now,
            "speed": self.clock.speed,
            "step_ms": self.market.step_ms,
            "shift_ms": self.market.shift_ms,
            "finished": self.market.finished(now),
            "symbols": {
                s: {
                    "last": str(self.market.last_price(s, now)),
                    "first_ms": self.market.first_ms(s),
                    "end_ms": self.market.end_ms(s),
                }
                for s in self.market.symbols
            },
            "accounts": {a.api_key: a.summary() for a in self.accounts},
            "restarts": self.restarts,
            "ws_connections": len(self.dialect.hub.connections),
            "ws_connects": self.dialect.hub.connects,
            "faults": sum(v for k, v in self.faults.counts.items() if k != "not_found_lookup"),
            # control calls excluded: they are the tests', not the clients'
            "requests": _client_counts(self.requests),
            "signed_requests": _client_counts(self.signed_requests),
        }

    def books(self, api_key: str | None = None) -> dict[str, Any]:
        """The books of one account (default: the first); each order and trade also carries
        ``exchange_id``, the id clients see in the exchange's format (what ccxt reports)."""
        account = self.accounts.get(api_key) if api_key else self.default_account
        if account is None:
            raise VenueError("no account with this api_key")
        books = account.books()
        for order in books["orders"]:
            order["exchange_id"] = self.dialect.wire_order_id(str(order["id"]))
        for trade in books["trades"]:
            trade["exchange_id"] = self.dialect.wire_trade_id(str(trade["id"]))
        return books

    async def _state(self, request: web.Request) -> Any:
        return self.state()

    async def _books(self, request: web.Request) -> Any:
        return self.books(request.query.get("api_key"))

    async def _faults_get(self, request: web.Request) -> Any:
        return self.faults.stats()

    async def _faults_post(self, request: web.Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            raise VenueError("the body must be JSON: a fault object or a list of them") from None
        items = body if isinstance(body, list) else [body]
        parsed = [fault_from_json(item) for item in items]  # all valid, or none is added
        return {"added": [self.faults.add(f).to_json() for f in parsed]}

    async def _faults_delete(self, request: web.Request) -> Any:
        return {"cleared": self.faults.clear()}

    async def _clock_post(self, request: web.Request) -> Any:
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            raise VenueError("the body must be JSON") from None
        now = await self.advance(
            to=_int_or_none(body.get("to")),
            ms=_int_or_none(body.get("ms")),
            step=_int_or_none(body.get("step")),
        )
        return {"now_ms": now}

    async def _restart_post(self, request: web.Request) -> Any:
        body = await request.json() if request.can_read_body else {}
        # a moment later, so this answer still reaches the caller before its socket closes
        self.schedule_restart(float(body.get("delay", 0)), after=0.05)
        return {"restarting": True}


def _client_counts(counts: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in sorted(counts.items()) if " /venue/" not in k}


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


class VenueClient:
    """Async client of a venue's control endpoint (tests and scripts)."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._session: ClientSession | None = None
        self._timeout = ClientTimeout(total=timeout)

    async def __aenter__(self) -> VenueClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._session is None:
            self._session = ClientSession(timeout=self._timeout)
        headers = {TOKEN_HEADER: self.token}
        async with self._session.request(
            method, f"{self.base_url}{path}", headers=headers, **kwargs
        ) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200:
                raise VenueError(f"venue {method} {path}: {resp.status} {body}")
            return body

    async def state(self) -> dict[str, Any]:
        """``GET /venue/state``."""
        return dict(await self._call("GET", "/venue/state"))

    async def books(self, api_key: str | None = None) -> dict[str, Any]:
        """``GET /venue/books``: balances, orders and trades of an account (the truth)."""
        params = {"api_key": api_key} if api_key else {}
        return dict(await self._call("GET", "/venue/books", params=params))

    async def add_faults(self, *faults: Fault | dict[str, Any]) -> list[dict[str, Any]]:
        """``POST /venue/faults``; returns the queued faults with their ids."""
        body = [f.to_json() if isinstance(f, Fault) else f for f in faults]
        for item in body:
            for key in ("id", "fired", "source"):
                item.pop(key, None)
        return list((await self._call("POST", "/venue/faults", json=body))["added"])

    async def faults(self) -> dict[str, Any]:
        """``GET /venue/faults``: counters, queued faults, recent events."""
        return dict(await self._call("GET", "/venue/faults"))

    async def clear_faults(self) -> int:
        """``DELETE /venue/faults``."""
        return int((await self._call("DELETE", "/venue/faults"))["cleared"])

    async def advance(
        self, to: int | None = None, ms: int | None = None, step: int | None = None
    ) -> int:
        """``POST /venue/clock``: move venue time; returns it."""
        body = {k: v for k, v in {"to": to, "ms": ms, "step": step}.items() if v is not None}
        return int((await self._call("POST", "/venue/clock", json=body))["now_ms"])

    async def restart(self, delay: float = 0.0) -> None:
        """``POST /venue/restart``."""
        await self._call("POST", "/venue/restart", json={"delay": delay})
