"""Fixtures for the dashboard tests: settings with a known token, the app, a client, a live
server over a seeded SQLite file (for schemathesis and the browser)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kmg_autotrader.config import Settings
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui import BackgroundServer, create_app
from tests.webui.seed import seed

TOKEN = "test-token-0123456789abcdefghijkl"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE_URL = "http://127.0.0.1"
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings that never read a .env file."""
    values: dict[str, object] = {"data_dir": data_dir, "api_token": TOKEN}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def web_settings(tmp_path: Path) -> Settings:
    """PAPER settings with the test token and a private data dir."""
    return make_settings(tmp_path / "data")


@pytest.fixture
def app(web_settings: Settings, repos: Repositories) -> FastAPI:
    """The dashboard over the test database (SQLite and PostgreSQL)."""
    return create_app(web_settings, repos)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An unauthenticated client (pass ``headers=AUTH`` or log in)."""
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def seeded(repos: Repositories) -> dict[str, int]:
    """Seed the test database; return the ids of interest."""
    return seed(repos)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """A real uvicorn server on a free port over a seeded SQLite file."""
    root = tmp_path_factory.mktemp("live")
    database = open_database(f"sqlite:///{root / 'web.sqlite'}")
    repos = Repositories(database)
    seed(repos)
    settings = make_settings(root / "data", web_port=8000)
    app = create_app(settings, repos, poll_seconds=0.2, stream_max_seconds=2.0)
    server = BackgroundServer(app, settings, port=0).start()
    server.repos = repos  # type: ignore[attr-defined]
    yield server
    server.stop()
    database.dispose()
