"""Migrations on a database that already holds rows, on SQLite and PostgreSQL: 0002 (risk
parameter versions per mode) keeps every old version working in both modes, and the models
match what the migrations build."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import make_url

from kmg_autotrader.domain import Mode
from kmg_autotrader.risk import RiskParams, RiskParamsStore
from kmg_autotrader.storage.database import Database
from kmg_autotrader.storage.models import Base
from kmg_autotrader.storage.repositories import Repositories

SCHEMA = "kmg_migration_test"
OLD_ROWS = [  # as revision 0001 stored them: one list of versions for both modes
    (1, {"max_open_positions": 2}, "web:session", "fewer", 1_700_000_000_000),
    (2, {"max_open_positions": 2, "max_drawdown_percent": 4.0}, "web:token", "", 1_700_000_100_000),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str
) -> Iterator[Database]:
    """A database with no table at all (PostgreSQL: a schema of its own in the test database)."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'old.sqlite'}")
        yield database
        database.dispose()
        return
    admin = Database(postgres_url)
    try:
        with admin.engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    except Exception as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL test database unreachable ({type(exc).__name__})")
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={SCHEMA}"})
    database = Database(url.render_as_string(hide_password=False))
    yield database
    database.dispose()
    with admin.engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    admin.dispose()


def _old_rows(database: Database) -> None:
    with database.engine.begin() as connection:
        for version, params, source, comment, created_at in OLD_ROWS:
            connection.execute(
                text(
                    "INSERT INTO risk_parameter_versions "
                    "(version, params, source, comment, created_at) "
                    "VALUES (:v, :p, :s, :c, :t)"
                ),
                {"v": version, "p": json.dumps(params), "s": source, "c": comment, "t": created_at},
            )


def test_0002_keeps_old_versions_working_in_both_modes(empty_database: Database) -> None:
    empty_database.upgrade("0001")
    _old_rows(empty_database)
    empty_database.upgrade("0002")
    assert empty_database.current() == "0002"
    repos = Repositories(empty_database)
    for mode in (Mode.PAPER, Mode.LIVE):
        history = repos.risk_params.history(mode)
        assert [(r["version"], r["source"], r["created_at"]) for r in history] == [
            (2, "web:token", 1_700_000_100_000),
            (1, "web:session", 1_700_000_000_000),
        ]
        version, params = RiskParamsStore(repos.risk_params, RiskParams(), mode=mode).current()
        assert version == 2
        assert params.max_open_positions == 2 and params.max_drawdown_percent == 4.0
    assert repos.risk_params.latest(Mode.PAPER)["comment"] == ""
    assert "copied to live by migration 0002" in repos.risk_params.latest(Mode.LIVE)["comment"]
    # from now on the modes are separate
    paper = RiskParamsStore(repos.risk_params, RiskParams(), mode=Mode.PAPER)
    assert paper.update({"max_open_positions": 5}, source="web:session")[0] == 3
    live_version, live = RiskParamsStore(repos.risk_params, RiskParams(), mode=Mode.LIVE).current()
    assert live_version == 2 and live.max_open_positions == 2
    # and back: one list again, the PAPER one
    empty_database.downgrade("0001")
    with empty_database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT version FROM risk_parameter_versions ORDER BY version")
        ).all()
    assert [row[0] for row in rows] == [1, 2, 3]


def test_the_models_match_the_migrations(empty_database: Database) -> None:
    empty_database.upgrade()
    with empty_database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_0003_gives_positions_closed_before_it_their_closed_amount(
    empty_database: Database,
) -> None:
    empty_database.upgrade("0002")
    sqlite = empty_database.engine.dialect.name == "sqlite"

    def money(value: str) -> object:
        return value if sqlite else Decimal(value)

    with empty_database.engine.begin() as connection:
        for pid, closed_at in ((1, 2_000), (2, 2_000), (3, None)):
            connection.execute(
                text(
                    "INSERT INTO positions (id, mode, symbol, amount, entry_price, opened_at, "
                    "fees_paid, realized_pnl, closed_at, exiting, extra) VALUES "
                    "(:id, 'paper', 'BTC/USDT', :zero, :price, 1000, :zero, :zero, :closed, "
                    ":no, '{}')"
                ),
                {
                    "id": pid,
                    "zero": money("0"),
                    "price": money("20000"),
                    "closed": closed_at,
                    "no": False,
                },
            )
        orders = [("b1", 1, "buy"), ("s1", 1, "sell"), ("s1b", 1, "sell"), ("b3", 3, "buy")]
        for coid, pid, side in orders:
            connection.execute(
                text(
                    "INSERT INTO orders (mode, client_order_id, symbol, side, type, amount, "
                    "status, filled, fee, purpose, position_id, created_at, updated_at) VALUES "
                    "('paper', :coid, 'BTC/USDT', :side, 'market', :amount, 'filled', :amount, "
                    ":zero, 'entry', :pid, 1000, 1000)"
                ),
                {
                    "coid": coid,
                    "side": side,
                    "amount": money("0.1"),
                    "zero": money("0"),
                    "pid": pid,
                },
            )
        fills = [("b1", "buy", "0.1"), ("s1", "sell", "0.06"), ("s1b", "sell", "0.04")]
        fills.append(("b3", "buy", "0.1"))
        for n, (coid, side, amount) in enumerate(fills):
            connection.execute(
                text(
                    "INSERT INTO fills (mode, client_order_id, trade_id, symbol, side, amount, "
                    "price, fee, fee_currency, is_maker, timestamp) VALUES ('paper', :coid, "
                    ":trade, 'BTC/USDT', :side, :amount, :price, :zero, 'USDT', :no, 1500)"
                ),
                {
                    "coid": coid,
                    "trade": f"t{n}",
                    "side": side,
                    "amount": money(amount),
                    "price": money("20000"),
                    "zero": money("0"),
                    "no": False,
                },
            )
    empty_database.upgrade("0003")
    repos = Repositories(empty_database)
    # sold in two fills: their sum; never bought (closed as a failed entry): still 0; open: as is
    assert repos.positions.get(Mode.PAPER, 1).amount == Decimal("0.1")  # type: ignore[union-attr]
    assert repos.positions.get(Mode.PAPER, 2).amount == 0  # type: ignore[union-attr]
    assert repos.positions.get(Mode.PAPER, 3).amount == 0  # type: ignore[union-attr]
