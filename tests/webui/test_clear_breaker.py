"""The dashboard's two switches: Resume un-pauses (and says a tripped breaker still blocks),
Clear breaker clears the risk manager's breaker with a confirmation, recording who and when."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from kmg_autotrader.config import Settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import now_ms
from kmg_autotrader.risk.clearing import stored_manager
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui.health import DatabaseHealth
from tests.webui.conftest import AUTH

pytestmark = pytest.mark.db
D = Decimal


def _trip(settings: Settings, repos: Repositories, mode: Mode = Mode.PAPER) -> None:
    """Trip the drawdown breaker as the bot would (daily kill-switch too: -10 %)."""
    manager = stored_manager(settings, repos, mode)
    now = now_ms()
    manager.update_equity(D(10_000), now)
    manager.update_equity(D(9_000), now + 1)


def test_resume_says_a_tripped_breaker_still_blocks_entries(
    client: TestClient, repos: Repositories, web_settings: Settings
) -> None:
    _trip(web_settings, repos)
    client.post("/control/pause", headers=AUTH)
    resumed = client.post("/control/resume", headers=AUTH).json()
    assert resumed["ok"] is True and resumed["paused"] is False
    assert resumed["message"].startswith("Trading resumed (no longer paused), but new entries")
    assert "drawdown breaker tripped" in resumed["message"]
    assert "Clear breaker" in resumed["message"]
    state = client.get("/control", headers=AUTH).json()
    assert state["breaker"]["tripped"] is True and state["kill_switch"]["tripped"] is True
    assert not repos.events.recent(Mode.PAPER, kind="breaker_cleared")


def test_resume_without_a_trip_says_entries_may_open(client: TestClient) -> None:
    resumed = client.post("/control/resume", headers=AUTH).json()
    assert resumed["message"] == "Trading resumed (no longer paused): new entries may open."


def test_clear_breaker_needs_confirmation_then_clears_and_records_who(
    client: TestClient, repos: Repositories, web_settings: Settings
) -> None:
    _trip(web_settings, repos)
    client.post("/control/pause", headers=AUTH)
    for body in (None, {"confirm": False}):
        refused = client.post("/control/clear-breaker", headers=AUTH, json=body)
        assert refused.status_code == 422
    assert client.get("/control", headers=AUTH).json()["breaker"]["tripped"] is True
    before = now_ms()
    done = client.post("/control/clear-breaker", headers=AUTH, json={"confirm": True})
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["action"] == "clear_breaker" and result["ok"] is True
    assert result["summary"]["cleared"] == ["drawdown breaker", "daily loss kill-switch"]
    assert result["summary"]["still_tripped"] == []
    assert "Cleared the PAPER drawdown breaker (by web:token at " in result["message"]
    assert result["message"].endswith("Trading stays paused: press Resume to open new trades.")
    assert result["paused"] is True  # clearing is not resuming
    state = client.get("/control", headers=AUTH).json()
    assert state["paused"] is True
    assert state["breaker"]["tripped"] is False and state["kill_switch"]["tripped"] is False
    assert state["breaker"]["cleared_by"] == "web:token"
    assert state["breaker"]["cleared_at"] >= before
    (event,) = repos.events.recent(Mode.PAPER, kind="breaker_cleared")
    assert event["details"]["by"] == "web:token"
    assert DatabaseHealth(web_settings, repos)()["breaker_state"] == "ok"
    # the bot's own reading of the stored state agrees
    assert stored_manager(web_settings, repos, Mode.PAPER).status()["breaker"]["tripped"] is False


def test_clear_breaker_with_nothing_tripped_is_refused(
    client: TestClient, repos: Repositories, web_settings: Settings
) -> None:
    _trip(web_settings, repos, Mode.LIVE)  # another mode's breaker is not this dashboard's
    refused = client.post("/control/clear-breaker", headers=AUTH, json={"confirm": True})
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("Nothing to clear: neither the drawdown breaker")
    assert not repos.events.recent(Mode.PAPER, kind="breaker_cleared")
    assert stored_manager(web_settings, repos, Mode.LIVE).status()["breaker"]["tripped"]


def test_the_clear_dialog_says_what_it_does(client: TestClient) -> None:
    page = client.get("/", headers=AUTH).text
    assert 'id="btn-clear-breaker"' in page and 'id="clear-breaker-dialog"' in page
    assert "does not pause or resume trading" in page
