"""The venue's books: one account per API key, each with its own paper matching engine.

The venue is the exchange: these books (balances, orders, trades) are the truth tests compare
our database with. Each account holds a :class:`~kmg_autotrader.execution.paper.PaperEngine`
configured with the venue's fees and market rules (minimums, precision from the packaged
snapshot), fed every replayed tick so resting limits fill when the price crosses them. Market
orders fill at once against the venue's book (best ask for a buy, best bid for a sell).

With a state file every change is written atomically (temp file + rename), so a restarted
venue keeps its books.
"""

from __future__ import annotations

import json
import os
import secrets as _secrets
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger

from kmg_autotrader.domain import MarketInfo
from kmg_autotrader.domain.clock import Clock
from kmg_autotrader.execution.fees import FeeSchedule, SlippageModel
from kmg_autotrader.execution.paper import PaperEngine, PaperSettings
from kmg_autotrader.execution.paper.model import EXPIRED, OPEN

STATE_VERSION = 1


def generate_keys() -> tuple[str, str]:
    """A fresh (api_key, secret) pair for a local venue account."""
    return _secrets.token_hex(32), _secrets.token_hex(32)


class _FillClock:
    """The engines' clock: venue time, except while a replayed tick is being matched, when it
    is the tick's time (a fill inside a candle is stamped when the price got there, not when
    the replay step that carried it ran)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.at: int | None = None

    def now_ms(self) -> int:
        return self.clock.now_ms() if self.at is None else self.at


@dataclass
class Account:
    """One venue account: its credentials and its matching engine (balances, orders, trades)."""

    api_key: str
    secret: str
    engine: PaperEngine

    def books(self) -> dict[str, Any]:
        """Balances, orders and trades, JSON-safe (Decimals as text): the truth for tests."""
        balance = self.engine.balance()
        return {
            "api_key": self.api_key,
            "balances": {
                c: {"free": str(balance["free"][c]), "used": str(balance["used"][c])}
                for c in balance["free"]
            },
            "orders": [o.to_json() for o in self.engine.orders.values()],
            "trades": [t.to_json() for t in self.engine.trades.values()],
        }

    def summary(self) -> dict[str, Any]:
        """Balances, open orders and the trade count (for ``GET /venue/state``)."""
        balance = self.engine.balance()
        return {
            "balances": {c: str(v) for c, v in balance["total"].items()},
            "open_orders": sum(1 for o in self.engine.orders.values() if o.status == OPEN),
            "orders": len(self.engine.orders),
            "trades": len(self.engine.trades),
        }


class Accounts:
    """Every account of the venue, keyed by API key, and their persistence.

    ``exchange_id`` names the fee/market family; ``markets`` are the venue's market rules;
    ``fees`` its fee schedule; ``clock`` stamps orders and fills with venue time;
    ``state_path`` (optional) is the JSON file the books are kept in.
    """

    def __init__(
        self,
        exchange_id: str,
        markets: Mapping[str, MarketInfo],
        fees: FeeSchedule,
        clock: Clock,
        state_path: Path | None = None,
    ) -> None:
        self.exchange_id = exchange_id
        self.markets = dict(markets)
        self.fees = fees
        self.clock = clock
        self._fill_clock = _FillClock(clock)
        self.state_path = state_path
        self._accounts: dict[str, Account] = {}
        self.settings = PaperSettings(
            exchange_id=exchange_id,
            fees=fees,
            slippage=SlippageModel(Decimal(0), Decimal(0)),
            immediate_market=True,
            volume_participation=None,  # the venue's depth is not capped by candle volume
        )
        self._restored: dict[str, Any] = {}
        if state_path is not None and state_path.exists():
            self._restored = read_state(state_path, exchange_id)
        # the venue's own facts kept beside the books (its timeline: symbols, shift, time)
        self.meta: dict[str, Any] = dict(self._restored.get("venue", {}))

    # ---- accounts ---------------------------------------------------------------------------

    def _engine(self) -> PaperEngine:
        return PaperEngine(self.markets, settings=self.settings, clock=self._fill_clock)

    def add(self, api_key: str, secret: str, balances: Mapping[str, Decimal]) -> Account:
        """Open an account (or take it back from the state file, books and all)."""
        if api_key in self._accounts:
            raise ValueError("an account with this API key exists already")
        engine = self._engine()
        saved = self._restored.get("accounts", {}).get(api_key)
        if saved is not None:
            if saved.get("secret") != secret:
                raise ValueError(
                    f"the state file {self.state_path} holds this API key with another secret"
                )
            engine.restore(saved["engine"])
            logger.info("venue account {}…: books restored from the state file", api_key[:6])
        else:
            engine.reset({c: Decimal(v) for c, v in balances.items()})
        account = Account(api_key, secret, engine)
        self._accounts[api_key] = account
        self.save()
        return account

    def restored_keys(self) -> list[tuple[str, str]]:
        """(api_key, secret) of the accounts in the state file (a restart re-opens them)."""
        return [(k, v["secret"]) for k, v in self._restored.get("accounts", {}).items()]

    def get(self, api_key: str) -> Account | None:
        """The account of ``api_key`` (None: unknown key)."""
        return self._accounts.get(api_key)

    def __iter__(self) -> Iterator[Account]:
        return iter(list(self._accounts.values()))

    def __len__(self) -> int:
        return len(self._accounts)

    # ---- orders -----------------------------------------------------------------------------

    def place(
        self,
        account: Account,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal,
        price: Decimal | None = None,
        *,
        client_order_id: str | None = None,
        post_only: bool = False,
        book: dict[str, Any] | None = None,
        partial: Decimal | None = None,
    ) -> dict[str, Any]:
        """Create an order in ``account`` (engine errors propagate: the dialect renders them).

        ``book`` is the venue's current book for ``symbol`` (fills and post-only checks).
        ``partial`` (a fraction in (0, 1)): the order fills only that share now; the rest of a
        market order fills on the next tick, the rest of a limit when the price crosses it.
        """
        engine = account.engine
        if client_order_id is not None:
            self._release_closed_client_id(engine, client_order_id)
        try:
            if partial is None:
                return engine.create_order(
                    symbol,
                    type,
                    side,
                    amount,
                    price,
                    client_order_id=client_order_id,
                    post_only=post_only,
                    book=book,
                )
            return self._place_partial(
                engine, symbol, type, side, amount, price, client_order_id, post_only, book, partial
            )
        finally:
            self.save()

    @staticmethod
    def _release_closed_client_id(engine: PaperEngine, client_order_id: str) -> None:
        """Binance and Kraken require a client order id to be unique among *open* orders only:
        once its order is closed the id may be sent again and names the new order. The paper
        engine refuses any reuse, so the venue frees the id of a closed order first (a client
        that re-sends blindly after an ambiguous answer trades twice here, as it would there)."""
        order_id = engine.by_client.get(client_order_id)
        if order_id is None:
            return
        if engine.fetch_order(order_id)["status"] != "open":
            del engine.by_client[client_order_id]

    def _place_partial(
        self,
        engine: PaperEngine,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal,
        price: Decimal | None,
        client_order_id: str | None,
        post_only: bool,
        book: dict[str, Any] | None,
        fraction: Decimal,
    ) -> dict[str, Any]:
        # Accept the order without matching it (a market order waits for a price, a limit
        # rests), then execute only ``fraction`` of it at the book: the engine has no per-order
        # fill cap, so this reaches into it on purpose, in this one place.
        saved_settings, saved_books = engine.settings, engine.books
        # a limit must not see the price (it would cross and fill whole); a market order keeps
        # it for the engine's funds and minimum checks
        saved_last = engine.last_price.get(symbol)
        if type == "limit":
            engine.last_price.pop(symbol, None)
        engine.settings = replace(saved_settings, immediate_market=False)
        engine.books = {}
        try:
            view = engine.create_order(
                symbol,
                type,
                side,
                amount,
                price,
                client_order_id=client_order_id,
                post_only=post_only,
            )
        finally:
            engine.settings, engine.books = saved_settings, saved_books
            if saved_last is not None:
                engine.last_price[symbol] = saved_last
            if book is not None:
                engine.books[symbol] = book
        order = engine.orders[view["id"]]
        market = engine.market(symbol)
        levels = (book or {}).get("asks" if side == "buy" else "bids") or []
        at = Decimal(str(levels[0][0])) if levels else saved_last
        if at is None or order.status != OPEN:
            return view
        if order.type == "limit" and order.price is not None:
            crosses = at <= order.price if side == "buy" else at >= order.price
            if not crosses:
                return view  # it rests: partial fills happen when the price reaches it
        part = (order.amount * fraction // market.amount_step) * market.amount_step
        if part <= 0 or part >= order.amount:
            return view
        engine._fill(order, market, part, at, is_maker=False)
        logger.info("venue: order {} filled {} of {} now (partial fault)", order.id, part, amount)
        return engine.fetch_order(order.id)

    def cancel(self, account: Account, order_id: str, *, expire: bool = False) -> dict[str, Any]:
        """Cancel an open order (``expire``: mark it expired, e.g. an IOC's unfilled rest);
        :class:`OrderNotFoundError` for an unknown or finished one."""
        try:
            view = account.engine.cancel_order(order_id)
            if expire:
                account.engine.orders[order_id].status = EXPIRED
                view = account.engine.fetch_order(order_id)
            return view
        finally:
            self.save()

    def on_price(self, symbol: str, price: Decimal, ts: int) -> int:
        """Feed a tick to every account; returns how many fills it caused (saved if any)."""
        fills = 0
        self._fill_clock.at = ts
        try:
            for account in self._accounts.values():
                fills += len(account.engine.on_price(symbol, price, ts))
        finally:
            self._fill_clock.at = None
        if fills:
            self.save()
        return fills

    # ---- persistence ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every account's books and credentials, JSON-safe."""
        return {
            "version": STATE_VERSION,
            "exchange": self.exchange_id,
            "venue": {**self.meta, "now_ms": self.clock.now_ms()},
            "accounts": {
                a.api_key: {"secret": a.secret, "engine": a.engine.snapshot()}
                for a in self._accounts.values()
            },
        }

    def save(self) -> None:
        """Write the state file atomically (no-op without one)."""
        if self.state_path is None:
            return
        path = self.state_path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".venue-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.snapshot(), handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)  # it holds the venue's (test) secrets
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def read_state(path: Path, exchange_id: str) -> dict[str, Any]:
    """A venue state file's content (raises ValueError with one line when it is unusable)."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the venue state file {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ValueError(f"{path} is not a venue state file (version {STATE_VERSION})")
    if state.get("exchange") != exchange_id:
        raise ValueError(
            f"{path} holds the books of a {state.get('exchange')} venue, not {exchange_id}"
        )
    return state
