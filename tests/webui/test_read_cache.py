"""The read cache beside the bot: copies of the heavy reads, never at the cost of security or of
the dashboard's own actions and live updates reading stale answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from kmg_autotrader.config import Settings
from kmg_autotrader.domain import EquityPoint, Mode
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui import create_app
from kmg_autotrader.webui.guard import CONTENT_SECURITY_POLICY
from tests.webui.conftest import AUTH, BASE_URL
from tests.webui.seed import START, STEP, seed


def _cached_client(settings: Settings, repos: Repositories, max_age: float) -> TestClient:
    return TestClient(create_app(settings, repos, read_cache_seconds=max_age), base_url=BASE_URL)


@pytest.fixture
def cached(web_settings: Settings, repos: Repositories) -> Iterator[TestClient]:
    """A dashboard whose copies stay fresh for a minute (only a drop makes it read again)."""
    seed(repos)
    with _cached_client(web_settings, repos, 60.0) as client:
        yield client


def _points(client: TestClient, **headers: str) -> int:
    response = client.get("/equity", headers={**AUTH, **headers})
    assert response.status_code == 200
    return int(response.json()["total_points"])


def _add_point(repos: Repositories, i: int) -> None:
    equity = Decimal(10_000 + i)
    repos.equity.add(EquityPoint(Mode.PAPER, START + (1000 + i) * STEP, equity, equity, Decimal(0)))


def test_a_copy_answers_until_an_action_drops_it(cached: TestClient, repos: Repositories) -> None:
    before = _points(cached)
    _add_point(repos, 1)
    assert _points(cached) == before  # the copy
    cached_response = cached.get("/equity", headers=AUTH)
    # the guard's headers are on the copy too
    assert cached_response.headers["cache-control"] == "no-store"
    assert cached_response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert cached.post("/control/pause", headers=AUTH).status_code == 200
    assert _points(cached) == before + 1  # an action dropped the copies


def test_no_copy_without_authentication(cached: TestClient) -> None:
    _points(cached)  # a copy exists
    assert cached.get("/equity").status_code == 401
    assert cached.get("/equity", headers={"Authorization": "Bearer wrong"}).status_code == 401
    cached.cookies.set("kmg_session", "forged")
    assert cached.get("/equity").status_code == 401
    cached.cookies.clear()
    bad_host = cached.get("/equity", headers={**AUTH, "Host": "evil.example"})
    assert bad_host.status_code == 400


def test_the_live_watcher_drops_the_copies_when_records_move(
    cached: TestClient, repos: Repositories
) -> None:
    watcher = cached.app.state.watcher  # type: ignore[attr-defined]
    before = _points(cached)
    watcher.poll_once()  # first markers
    _add_point(repos, 2)
    assert _points(cached) == before
    watcher.poll_once()  # sees the new point: drops the copies before it tells the browsers
    assert _points(cached) == before + 1


def test_an_old_copy_answers_once_while_a_new_one_is_computed(
    web_settings: Settings, repos: Repositories
) -> None:
    seed(repos)
    with _cached_client(web_settings, repos, 1.0) as client:
        before = _points(client)
        _add_point(repos, 3)
        time.sleep(1.1)  # older than max_age, younger than STALE_FACTOR (2) max_ages
        assert _points(client) == before  # answered at once from the old copy...
        deadline = time.monotonic() + 10
        while _points(client) != before + 1:  # ...while the new one was being computed
            assert time.monotonic() < deadline, "the copy was never refreshed"
            time.sleep(0.05)


def test_without_a_cache_every_read_is_fresh(client: TestClient, repos: Repositories) -> None:
    seed(repos)
    before = _points(client)
    _add_point(repos, 4)
    assert _points(client) == before + 1
