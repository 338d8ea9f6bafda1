"""Child process for the crash test: places one order, and dies right after the exchange
accepted it — before our database learns the outcome.

Usage: python crash_child.py DB_URL LEDGER_PATH STAGE
"""

from __future__ import annotations

import asyncio
import os
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.manager import ExecutionConfig, ExecutionManager
from kmg_autotrader.execution.paper import (
    FileLedger,
    PaperEngine,
    PaperExchange,
    PaperSettings,
)
from kmg_autotrader.execution.store_db import RepositoryStore
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from tests.execution.helpers import MARKETS, NO_WAIT, intent

CRASH_CODE = 17


def build(url: str, ledger_path: str, hook: object = None) -> tuple[ExecutionManager, PaperEngine]:
    """The same stack the parent rebuilds after the 'restart'."""
    repos = Repositories(open_database(url))
    clock = SimulatedClock(1_000)
    engine = PaperEngine(
        MARKETS,
        settings=PaperSettings(immediate_market=True),
        clock=clock,
        ledger=FileLedger(ledger_path, repos.balances),
        balances={"USDT": Decimal(10_000)},
    )
    manager = ExecutionManager(
        PaperExchange(engine),
        RepositoryStore(repos, Mode.PAPER),
        clock=clock,
        config=ExecutionConfig(retry=NO_WAIT),
        hook=hook,  # type: ignore[arg-type]
    )
    return manager, engine


def main() -> None:
    url, ledger_path, stage = sys.argv[1:4]

    def die(at: str, client_order_id: str) -> None:
        if at == stage:
            os._exit(CRASH_CODE)  # no cleanup, no commit: a power cut

    manager, engine = build(url, ledger_path, die)
    engine.on_price("BTC/USDT", Decimal(20_000), 900)
    asyncio.run(manager.execute(intent()))
    sys.exit(0)


if __name__ == "__main__":
    main()
