"""Shared fixtures.

Database tests run on both backends: SQLite (a temporary file) and a real PostgreSQL server.
The PostgreSQL URL comes from ``KMG_TEST_POSTGRES_URL`` (``.ci/run`` creates a throwaway
database and sets it). If PostgreSQL cannot be reached the tests FAIL rather than skip, unless
``KMG_TEST_SKIP_POSTGRES=1`` is set explicitly (for a quick local run without a server).

Every file a test reads is in the repository (``tests/data/``, ``kmg_autotrader/sample_data``):
a guard (``tests/outside_reads.py``) fails any test that opens the shared data folder beside
the checkout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from kmg_autotrader.storage.database import Database, open_database
from kmg_autotrader.storage.models import Base
from kmg_autotrader.storage.repositories import Repositories
from tests import outside_reads

# Installed before any test module is imported, so a module-level read is refused too.
OUTSIDE_READS = outside_reads.install()


DEFAULT_PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/kmg_test"


def _backends() -> list[str]:
    if os.environ.get("KMG_TEST_SKIP_POSTGRES") == "1":
        return ["sqlite"]
    return ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's .env nor write into the real DATA_DIR."""
    for name in list(os.environ):
        if name.startswith(
            (
                "OPENAI_",
                "BINANCE_",
                "KRAKEN_",
                "TELEGRAM_",
                "DISCORD_",
                "ALERT_URLS",
                "API_TOKEN",
                "POSTGRES_URL",
                "TRADING_MODE",
                "EXCHANGE",
                "SYMBOLS",
                "DATA_DIR",
            )
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _no_reads_outside_the_repository() -> Iterator[None]:
    """Fail a test that read the shared data folder even if the code under test swallowed the
    guard's error (the files a test needs are in tests/data/ or sample_data/)."""
    OUTSIDE_READS.violations.clear()
    yield
    if OUTSIDE_READS.violations:
        found = OUTSIDE_READS.violations[0]
        OUTSIDE_READS.violations.clear()
        pytest.fail(found, pytrace=False)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the throwaway PostgreSQL test database."""
    return os.environ.get("KMG_TEST_POSTGRES_URL", DEFAULT_PG_URL)


_ENGINES: dict[str, Database] = {}


def _session_database(backend: str, tmp_root: Path, pg_url: str) -> Database:
    if backend not in _ENGINES:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_root / 'test.sqlite'}"
        else:
            url = pg_url
            probe = Database(url)
            try:
                with probe.engine.connect() as connection:
                    connection.execute(text("DROP SCHEMA public CASCADE"))
                    connection.execute(text("CREATE SCHEMA public"))
                    connection.commit()
            except Exception as exc:
                pytest.fail(
                    f"PostgreSQL test database unreachable ({type(exc).__name__}); "
                    "start PostgreSQL and create the database, or set KMG_TEST_SKIP_POSTGRES=1"
                )
            finally:
                probe.dispose()
        _ENGINES[backend] = open_database(url)  # runs the real Alembic migrations
    return _ENGINES[backend]


@pytest.fixture(params=_backends())
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_url: str
) -> Iterator[Database]:
    """A migrated database on each backend, emptied before every test."""
    root = tmp_path_factory.getbasetemp()
    db = _session_database(request.param, root, postgres_url)
    with db.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    yield db


@pytest.fixture
def repos(database: Database) -> Repositories:
    """Every repository over the test database."""
    return Repositories(database)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for db in _ENGINES.values():
        db.dispose()
