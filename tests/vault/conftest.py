"""The real bot wiring for vault tests: the test database, a paper exchange filling at once,
DATA_DIR under the test's tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from kmg_autotrader.autopilot.wiring import BotRuntime, build_runtime, sample_markets
from kmg_autotrader.config import load_settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.paper import PaperEngine, PaperExchange, PaperSettings
from kmg_autotrader.storage.repositories import Repositories

D = Decimal
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
SYMBOL = "BTC/USDT"


def make_runtime(repos: Repositories, data: Path, now: int = T0) -> BotRuntime:
    """One bot process over ``repos`` (a second call is a restart)."""
    settings = load_settings(None, data_dir=data, advisor_mode="off", symbols=[SYMBOL])
    clock = SimulatedClock(now)
    markets = sample_markets([SYMBOL], "binance")
    engine = PaperEngine(
        markets,
        settings=PaperSettings(immediate_market=True),
        clock=clock,
        balances={"USDT": D(10_000)},
    )
    paper = PaperExchange(engine)
    return build_runtime(
        settings,
        repos,
        mode=Mode.PAPER,
        clock=clock,
        exchange=paper,
        markets=markets,
        paper=paper,
        quote="USDT",
    )


@pytest.fixture
async def runtime(repos: Repositories, tmp_path: Path) -> AsyncIterator[BotRuntime]:
    """The real bot wiring over the test database, a paper exchange filling at once."""
    built = make_runtime(repos, tmp_path / "data")
    built.alerts.start()
    yield built
    await built.stop()
