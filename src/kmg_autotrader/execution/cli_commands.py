"""``kmg paper reset|export`` and ``kmg flatten`` (registered in :mod:`kmg_autotrader.cli`).

Bad input prints one clear line and exits 2; a command that ran and failed exits 1.

The database, the exchange adapter and the execution stack are imported inside the commands,
so ``kmg --help`` and the other commands start without them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kmg_autotrader.cli_support import EXIT_FAILURE, console, fail, settings_or_exit
from kmg_autotrader.domain import Mode, OrderStatus
from kmg_autotrader.domain.clock import now_ms

if TYPE_CHECKING:
    from kmg_autotrader.config import Settings
    from kmg_autotrader.exchange import ExchangeAdapter
    from kmg_autotrader.execution.flatten import FlattenSummary
    from kmg_autotrader.storage.repositories import Repositories

paper_app = typer.Typer(
    help="The paper trading account: reset it or export its ledger.", no_args_is_help=True
)

# Builds the adapter `kmg flatten` uses; tests replace it to reach a local fake exchange.
AdapterFactory = Callable[["Settings"], "ExchangeAdapter"]


def _default_adapter(settings: Settings) -> ExchangeAdapter:
    from kmg_autotrader.exchange import ExchangeAdapter

    return ExchangeAdapter.from_settings(settings)


adapter_factory: AdapterFactory = _default_adapter

_CURRENCY = re.compile(r"^[A-Z0-9]{2,12}$")


@contextmanager
def _repositories(settings: Settings) -> Iterator[Repositories]:
    from kmg_autotrader.storage.database import Database, DatabaseError
    from kmg_autotrader.storage.repositories import Repositories

    database = Database(settings.database_url)
    try:
        database.upgrade()
        yield Repositories(database)
    except DatabaseError as exc:
        fail(str(exc), EXIT_FAILURE)
    finally:
        database.dispose()


def _parse_amount(value: str) -> Decimal:
    try:
        amount = Decimal(value.replace("_", ""))
    except InvalidOperation:
        fail(f"--balance {value!r} is not a number")
    if not amount.is_finite() or amount <= 0:
        fail(f"--balance must be a positive number, got {value!r}")
    return amount


# ---- kmg paper reset ---------------------------------------------------------------------------


@paper_app.command("reset")
def reset(
    balance: str | None = typer.Option(
        None, "--balance", help="Starting balance. Default: PAPER_STARTING_BALANCE."
    ),
    quote: str | None = typer.Option(
        None, "--quote", help="Quote currency of the balance. Default: PAPER_QUOTE_CURRENCY."
    ),
) -> None:
    """Start a fresh paper account: one balance, no orders, no open positions (LIVE untouched)."""
    from kmg_autotrader.execution.paper import FileLedger, PaperEngine
    from kmg_autotrader.execution.runtime import paper_book_path

    settings = settings_or_exit()
    amount = _parse_amount(balance if balance is not None else str(settings.paper_starting_balance))
    currency = (quote or settings.paper_quote_currency).strip().upper()
    if not _CURRENCY.match(currency):
        fail(f"--quote {quote!r} is not a currency code like USDT")
    with _repositories(settings) as repos:
        stamp = now_ms()
        closed = 0
        for position in repos.positions.open_positions(Mode.PAPER):
            assert position.id is not None
            repos.positions.close(
                Mode.PAPER,
                position.id,
                closed_at=stamp,
                exit_price=position.entry_price,
                exit_reason="paper_reset",
                realized_pnl=position.realized_pnl,
                fees_paid=position.fees_paid,
            )
            closed += 1
        canceled = 0
        for order in repos.orders.open_orders(Mode.PAPER):
            repos.orders.update(
                Mode.PAPER,
                order.client_order_id,
                status=OrderStatus.CANCELED,
                error="paper account reset",
            )
            canceled += 1
        repos.balances.clear(Mode.PAPER)
        engine = PaperEngine({}, ledger=FileLedger(paper_book_path(settings), repos.balances))
        with engine.ledger.session(engine, write=True):
            engine.reset({currency: amount})
        repos.events.add(
            Mode.PAPER,
            "paper_reset",
            f"paper account reset to {amount} {currency}",
            source="cli",
            details={"closed_positions": closed, "canceled_orders": canceled},
        )
    console.print(
        f"paper account reset: {amount} {currency} "
        f"({closed} open positions closed, {canceled} open orders cancelled)"
    )


# ---- kmg paper export --------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Enum):
        return value.value
    return value


def _all_pages(fetch: Callable[[int], list[Any]]) -> list[Any]:
    from kmg_autotrader.storage.repositories import MAX_PAGE

    rows: list[Any] = []
    while True:
        page = fetch(len(rows))
        rows.extend(page)
        if len(page) < MAX_PAGE:
            return rows


@paper_app.command("export")
def export(
    output: Path = typer.Option(
        Path("paper_ledger.json"), "--output", "-o", help="Where to write the ledger."
    ),
) -> None:
    """Write the paper ledger (balances, orders, fills, positions, the exchange book) as JSON."""
    from kmg_autotrader.execution.paper import FileLedger
    from kmg_autotrader.execution.runtime import paper_book_path
    from kmg_autotrader.storage.repositories import MAX_PAGE

    settings = settings_or_exit()
    if output.exists() and output.is_dir():
        fail(f"--output {output} is a directory")
    with _repositories(settings) as repos:
        orders = _all_pages(lambda off: repos.orders.recent(Mode.PAPER, limit=MAX_PAGE, offset=off))
        fills = _all_pages(lambda off: repos.fills.recent(Mode.PAPER, limit=MAX_PAGE, offset=off))
        ledger = {
            "mode": Mode.PAPER.value,
            "exported_at": now_ms(),
            "balances": repos.balances.all(Mode.PAPER),
            "orders": orders,
            "fills": fills,
            "open_positions": repos.positions.open_positions(Mode.PAPER),
            "closed_positions": _all_pages(
                lambda off: repos.positions.closed_positions(Mode.PAPER, limit=MAX_PAGE, offset=off)
            ),
            "exchange_book": FileLedger(paper_book_path(settings)).read(),
        }
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(_plain(ledger), indent=2), encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_FAILURE)
    console.print(f"wrote {output} ({len(orders)} orders, {len(fills)} fills)")


# ---- kmg flatten -------------------------------------------------------------------------------

# How long `kmg flatten` waits for its exits to fill by default: a Kraken market sell takes a few
# seconds of ccxt's throttle to confirm (QueryOrders, QueryTrades), more behind other calls.
FLATTEN_WAIT_S = 30.0


def flatten(
    live: bool = typer.Option(
        False, "--live", help="Flatten the LIVE account (also needs TRADING_MODE=live and keys)."
    ),
    wait: float = typer.Option(
        FLATTEN_WAIT_S,
        "--wait",
        min=0,
        help="Seconds to wait for the exits to fill (an exchange may answer before they "
        "do), recording their fills; 0: do not wait.",
    ),
) -> None:
    """Emergency: cancel every open order and close every position of the current mode."""
    from kmg_autotrader.exchange import ExchangeAdapterError
    from kmg_autotrader.execution.errors import LiveTradingRefusedError
    from kmg_autotrader.execution.live_guard import ensure_live_allowed

    settings = settings_or_exit()
    try:
        ensure_live_allowed(settings, live)
    except LiveTradingRefusedError as exc:
        fail(str(exc))
    mode = Mode.LIVE if live else Mode.PAPER
    with _repositories(settings) as repos:
        if mode is Mode.PAPER and _paper_is_flat(settings, repos):
            console.print("flatten (paper): nothing open — no orders, no positions")
            return
        try:
            summary = asyncio.run(_flatten(settings, repos, mode, wait))
        except ExchangeAdapterError as exc:
            fail(f"cannot reach {settings.exchange}: {exc}", EXIT_FAILURE)
    for line in summary.lines():
        console.print(line, highlight=False)
    if not summary.ok:
        raise typer.Exit(EXIT_FAILURE)


def _paper_is_flat(settings: Settings, repos: Repositories) -> bool:
    from kmg_autotrader.execution.paper import FileLedger
    from kmg_autotrader.execution.runtime import paper_book_path

    if repos.orders.open_orders(Mode.PAPER) or repos.positions.open_positions(Mode.PAPER):
        return False
    book = FileLedger(paper_book_path(settings)).read() or {}
    return not any(o.get("status") == "open" for o in book.get("orders", []))


async def _flatten(
    settings: Settings, repos: Repositories, mode: Mode, wait_s: float
) -> FlattenSummary:
    from kmg_autotrader.execution.ccxt_orders import CcxtExchange
    from kmg_autotrader.execution.flatten import flatten as flatten_all
    from kmg_autotrader.execution.runtime import build_manager, open_paper_exchange

    adapter = adapter_factory(settings)
    try:
        markets = await adapter.load_markets()
        if mode is Mode.LIVE:
            exchange: Any = CcxtExchange(adapter)
        else:
            exchange = open_paper_exchange(settings, repos, markets, market_data=adapter)
        manager = build_manager(settings, repos, exchange, mode)
        return await flatten_all(manager, symbols=tuple(settings.symbols), wait_s=wait_s)
    finally:
        await adapter.close()
