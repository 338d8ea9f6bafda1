"""PUT /risk validation (422 or 409, nothing changed) and paging limits of every list endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kmg_autotrader.domain import Mode
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui import create_app
from tests.webui.conftest import AUTH, BASE_URL, make_settings

pytestmark = pytest.mark.db


def test_get_risk_lists_fields_with_ranges(client: TestClient) -> None:
    data = client.get("/risk", headers=AUTH).json()
    assert data["version"] == 0 and data["source"] == "defaults"
    fields = {f["name"]: f for f in data["fields"]}
    assert set(fields) == set(data["params"])
    assert fields["max_open_positions"]["type"] == "integer"
    assert fields["max_open_positions"]["minimum"] == 1
    assert fields["max_position_percent"]["exclusive_minimum"] == 0


def test_every_percentage_is_shown_and_typed_in_percent(
    client: TestClient, repos: Repositories
) -> None:
    """max_position_percent is stored as a fraction (0.2) like MAX_POSITION_PERCENT, but the
    API shows and takes 20, as it does risk_per_trade_percent's 1 (regression: 20 was refused
    with "less than or equal to 1")."""
    data = client.get("/risk", headers=AUTH).json()
    fields = {f["name"]: f for f in data["fields"]}
    assert data["params"]["max_position_percent"] == 20.0
    assert data["params"]["max_total_exposure_percent"] == 80.0
    assert data["params"]["fee_safety_margin"] == 0.1
    assert data["params"]["risk_per_trade_percent"] == 1.0
    assert fields["max_position_percent"]["maximum"] == 100
    assert fields["max_position_percent"]["default"] == 20.0
    assert fields["max_position_percent"]["unit"] == "%"
    assert fields["fee_safety_margin"]["maximum"] == 10
    assert fields["slippage_bps"]["unit"] == "bps"
    assert "percent" in fields["max_position_percent"]["description"]
    response = client.put("/risk", headers=AUTH, json={"changes": {"max_position_percent": 25}})
    assert response.status_code == 200, response.text
    assert response.json()["params"]["max_position_percent"] == 25.0
    stored = repos.risk_params.latest(Mode.PAPER)
    assert stored is not None and stored["params"]["max_position_percent"] == 0.25
    refused = client.put("/risk", headers=AUTH, json={"changes": {"max_position_percent": 90}})
    assert refused.status_code == 409  # above the exposure cap: the message speaks percent
    assert "(90 % > 80 %)" in refused.json()["errors"][0]["message"]
    too_big = client.put("/risk", headers=AUTH, json={"changes": {"max_position_percent": 150}})
    assert too_big.status_code == 422
    assert "less than or equal to 100" in too_big.json()["errors"][0]["message"]
    # strict as every input: a string is not a number
    typed = client.put("/risk", headers=AUTH, json={"changes": {"max_position_percent": "20"}})
    assert typed.status_code == 422


def test_put_risk_stores_a_new_version_with_its_author(
    client: TestClient, repos: Repositories
) -> None:
    response = client.put(
        "/risk",
        headers=AUTH,
        json={"changes": {"max_open_positions": 5, "slippage_bps": 7.5}, "comment": "calmer"},
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["version"] == 1 and data["params"]["max_open_positions"] == 5
    assert data["source"] == "web:token" and data["comment"] == "calmer"
    stored = repos.risk_params.latest(Mode.PAPER)
    assert stored is not None and stored["params"]["slippage_bps"] == 7.5
    assert client.get("/risk", headers=AUTH).json()["params"]["max_open_positions"] == 5


def test_a_paper_edit_leaves_the_live_limits_alone(
    client: TestClient, repos: Repositories, tmp_path: Path
) -> None:
    done = client.put("/risk", headers=AUTH, json={"changes": {"max_drawdown_percent": 20.0}})
    assert done.status_code == 200 and done.json()["mode"] == "paper"
    live_settings = make_settings(tmp_path / "live", trading_mode="live", max_drawdown=4.0)
    with TestClient(create_app(live_settings, repos), base_url=BASE_URL) as live:
        data = live.get("/risk", headers=AUTH).json()
        assert data["mode"] == "live" and data["version"] == 0
        assert data["params"]["max_drawdown_percent"] == 4.0
        sources = {s["name"]: s for s in data["sources"]}
        assert sources["max_drawdown_percent"]["source"] == ".env (MAX_DRAWDOWN)"
        assert sources["max_open_positions"]["source"] == "default"
        edited = live.put("/risk", headers=AUTH, json={"changes": {"max_open_positions": 1}})
        assert edited.json()["version"] == 1
    assert repos.risk_params.latest(Mode.LIVE)["params"]["max_drawdown_percent"] == 4.0
    paper = client.get("/risk", headers=AUTH).json()
    assert paper["version"] == 1 and paper["params"]["max_open_positions"] == 3
    assert paper["params"]["max_drawdown_percent"] == 20.0


def test_get_risk_says_where_each_value_comes_from(repos: Repositories, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "d", max_drawdown=8.0)
    with TestClient(create_app(settings, repos), base_url=BASE_URL) as client:
        before = {s["name"]: s for s in client.get("/risk", headers=AUTH).json()["sources"]}
        assert before["max_drawdown_percent"] == {
            "name": "max_drawdown_percent",
            "source": ".env (MAX_DRAWDOWN)",
            "setting": "MAX_DRAWDOWN",
            "overrides": None,
        }
        client.put("/risk", headers=AUTH, json={"changes": {"max_drawdown_percent": 6.0}})
        after = client.get("/risk", headers=AUTH).json()
    source = {s["name"]: s for s in after["sources"]}["max_drawdown_percent"]
    assert source["source"].startswith("dashboard edit v1 at 20")
    assert source["overrides"] == 8.0 and source["setting"] == "MAX_DRAWDOWN"
    assert after["params"]["max_drawdown_percent"] == 6.0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"changes": {"max_open_positions": 0}}, "changes.max_open_positions"),
        ({"changes": {"max_position_percent": 150}}, "changes.max_position_percent"),
        ({"changes": {"max_open_positions": "many"}}, "changes.max_open_positions"),
        ({"changes": {"no_such_thing": 1}}, "changes.no_such_thing"),
        ({"changes": {}}, "changes"),
        ({"max_open_positions": 2}, None),
        ({"changes": {"max_open_positions": 2}, "comment": "x" * 501}, "comment"),
    ],
)
def test_invalid_risk_change_is_422_and_changes_nothing(
    client: TestClient, repos: Repositories, body: dict, field: str | None
) -> None:
    before = client.get("/risk", headers=AUTH).json()
    response = client.put("/risk", headers=AUTH, json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors and all(set(e) == {"field", "message"} for e in errors)
    if field is not None:
        assert field in {e["field"] for e in errors}
    assert repos.risk_params.latest(Mode.PAPER) is None
    assert client.get("/risk", headers=AUTH).json() == before


@pytest.mark.parametrize(
    "changes",
    [
        {"cooldown_minutes": 500, "cooldown_after_loss_minutes": 10},
        {"cooldown_minutes": 500},  # against the loss cooldown in effect (120)
        {"max_position_percent": 90},  # above the exposure cap in effect (80 %)
    ],
)
def test_a_change_breaking_a_rule_between_parameters_is_409(
    client: TestClient, repos: Repositories, changes: dict
) -> None:
    """Each value is valid (the document says so); together with the others it is not."""
    before = client.get("/risk", headers=AUTH).json()
    response = client.put("/risk", headers=AUTH, json={"changes": changes})
    assert response.status_code == 409, response.text
    errors = response.json()["errors"]
    assert errors and all(set(e) == {"field", "message"} for e in errors)
    assert repos.risk_params.latest(Mode.PAPER) is None
    assert client.get("/risk", headers=AUTH).json() == before


def test_invalid_json_body_is_422(client: TestClient, repos: Repositories) -> None:
    response = client.put(
        "/risk", headers={**AUTH, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert response.status_code == 422
    assert client.put("/risk", headers=AUTH, content=b"").status_code == 422
    assert repos.risk_params.latest(Mode.PAPER) is None


LISTS = ["/signals", "/trades", "/logs", "/logs?kind=order", "/logs?kind=event"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("query", ["limit=0", "limit=201", "offset=-1", "offset=100001"])
def test_paging_limits_are_enforced(client: TestClient, path: str, query: str) -> None:
    sep = "&" if "?" in path else "?"
    response = client.get(f"{path}{sep}{query}", headers=AUTH)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] in {"limit", "offset"}


def test_other_bounds(client: TestClient) -> None:
    for path in (
        "/equity?max_points=1",
        "/equity?max_points=5001",
        "/advisor/confidence?limit=1001",
        "/signals/rejections?limit=101",
        "/signals?status=maybe",
        "/logs?kind=everything",
    ):
        assert client.get(path, headers=AUTH).status_code == 422, path


@pytest.mark.parametrize("path", ["/signals", "/trades", "/logs", "/logs?kind=advisor"])
def test_pages_walk_the_list_without_gaps_or_repeats(
    client: TestClient, seeded: dict, path: str
) -> None:
    sep = "&" if "?" in path else "?"
    everything = client.get(f"{path}{sep}limit=200", headers=AUTH).json()["items"]
    walked: list = []
    offset = 0
    while True:
        page = client.get(f"{path}{sep}limit=3&offset={offset}", headers=AUTH).json()
        assert len(page["items"]) <= 3 and page["limit"] == 3 and page["offset"] == offset
        walked += page["items"]
        if not page["has_more"]:
            break
        offset += 3
    assert [i["id"] for i in walked] == [i["id"] for i in everything]
    assert len(everything) > 3
