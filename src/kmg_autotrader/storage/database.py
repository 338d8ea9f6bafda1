"""Engine, sessions and migrations for SQLite (default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from loguru import logger
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from kmg_autotrader.fs import private_dir, private_file, tighten

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class DatabaseError(Exception):
    """The database cannot be reached or migrated; the message says what to check."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the dashboard read while the bot writes; foreign keys are off by default in SQLite
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL never corrupts the file and survives an application crash; only a
    # power cut can drop the last commits (reconciliation re-adopts fills from the exchange).
    # FULL would fsync every commit, which costs more than the rest of a candle's work.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def safe_url(url: str) -> str:
    """The URL with its password hidden, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """One engine and session factory. Repositories get their sessions from here."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                database_file = Path(parsed.database)
                private_dir(database_file.parent)
                # owner-only (0600): SQLite gives its -wal/-shm/-journal files the same mode.
                # An unwritable place is left for SQLite to report when it connects.
                with contextlib.suppress(OSError):
                    private_file(database_file)
                for suffix in ("-wal", "-shm", "-journal"):
                    tighten(database_file.with_name(database_file.name + suffix))
            kwargs["connect_args"] = {"timeout": 10, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        session = self._sessions()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    # ---- migrations -----------------------------------------------------------------------

    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["engine"] = self.engine
        return config

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations up to ``revision`` (idempotent)."""
        try:
            command.upgrade(self._alembic_config(), revision)
        except Exception as exc:  # the URL may hold a password: never echo it
            raise DatabaseError(
                f"cannot migrate the database at {safe_url(self.url)}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc
        logger.debug("database at {} is at revision {}", safe_url(self.url), self.current())

    def downgrade(self, revision: str) -> None:
        """Undo migrations down to ``revision`` (each migration says what its undo keeps)."""
        command.downgrade(self._alembic_config(), revision)

    def current(self) -> str | None:
        """The revision the database is at (None when never migrated)."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head(self) -> str | None:
        """The newest revision shipped with the code."""
        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Open the database at ``url`` and (by default) migrate it to the newest revision."""
    database = Database(url)
    if migrate:
        database.upgrade()
    return database
