"""Building the execution stack from the settings (for the CLI; the autopilot may reuse it)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from kmg_autotrader.config import Settings
from kmg_autotrader.domain import MarketInfo, Mode
from kmg_autotrader.domain.clock import Clock, WallClock
from kmg_autotrader.execution.manager import ExecutionConfig, ExecutionManager
from kmg_autotrader.execution.paper import FileLedger, PaperEngine, PaperExchange, PaperSettings
from kmg_autotrader.execution.paper.exchange import MarketDataSource
from kmg_autotrader.execution.ports import ExchangePort
from kmg_autotrader.execution.store_db import RepositoryStore
from kmg_autotrader.storage.repositories import Repositories

PAPER_BOOK_FILE = "paper_exchange.json"


def paper_book_path(settings: Settings) -> Path:
    """Where the paper exchange keeps its order book (beside the SQLite file)."""
    return settings.data_dir / PAPER_BOOK_FILE


def open_paper_engine(
    settings: Settings,
    repos: Repositories,
    markets: Mapping[str, MarketInfo],
    *,
    clock: Clock | None = None,
) -> PaperEngine:
    """The persistent paper account (started with PAPER_STARTING_BALANCE on first use)."""
    return PaperEngine(
        markets,
        settings=PaperSettings(exchange_id=settings.exchange, immediate_market=True),
        clock=clock or WallClock(),
        ledger=FileLedger(paper_book_path(settings), repos.balances),
        balances={settings.paper_quote_currency: Decimal(str(settings.paper_starting_balance))},
    )


def open_paper_exchange(
    settings: Settings,
    repos: Repositories,
    markets: Mapping[str, MarketInfo],
    *,
    market_data: MarketDataSource | None = None,
    clock: Clock | None = None,
) -> PaperExchange:
    """The paper exchange fed by live data (``market_data``: the ccxt adapter), if given."""
    engine = open_paper_engine(settings, repos, markets, clock=clock)
    return PaperExchange(engine, market_data=market_data)


def build_manager(
    settings: Settings,
    repos: Repositories,
    exchange: ExchangePort,
    mode: Mode,
    *,
    clock: Clock | None = None,
) -> ExecutionManager:
    """An execution manager for ``mode`` recording in the database (a
    :class:`~.ccxt_orders.CcxtExchange` rate-limits every call itself)."""
    return ExecutionManager(
        exchange,
        RepositoryStore(repos, mode),
        clock=clock or WallClock(),
        config=ExecutionConfig(execution_mode=settings.execution_mode),
    )
