"""PUT /risk validation (422, nothing changed) and paging limits of every list endpoint."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kmg_autotrader.storage.repositories import Repositories
from tests.webui.conftest import AUTH

pytestmark = pytest.mark.db


def test_get_risk_lists_fields_with_ranges(client: TestClient) -> None:
    data = client.get("/risk", headers=AUTH).json()
    assert data["version"] == 0 and data["source"] == "defaults"
    fields = {f["name"]: f for f in data["fields"]}
    assert set(fields) == set(data["params"])
    assert fields["max_open_positions"]["type"] == "integer"
    assert fields["max_open_positions"]["minimum"] == 1
    assert fields["max_position_percent"]["exclusive_minimum"] == 0


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
    stored = repos.risk_params.latest()
    assert stored is not None and stored["params"]["slippage_bps"] == 7.5
    assert client.get("/risk", headers=AUTH).json()["params"]["max_open_positions"] == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"changes": {"max_open_positions": 0}}, "max_open_positions"),
        ({"changes": {"max_position_percent": 1.5}}, "max_position_percent"),
        ({"changes": {"max_open_positions": "many"}}, "max_open_positions"),
        ({"changes": {"no_such_thing": 1}}, "no_such_thing"),
        ({"changes": {"cooldown_minutes": 500, "cooldown_after_loss_minutes": 10}}, None),
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
    assert repos.risk_params.latest() is None
    assert client.get("/risk", headers=AUTH).json() == before


def test_invalid_json_body_is_422(client: TestClient, repos: Repositories) -> None:
    response = client.put(
        "/risk", headers={**AUTH, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert response.status_code == 422
    assert client.put("/risk", headers=AUTH, content=b"").status_code == 422
    assert repos.risk_params.latest() is None


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
        "/logs?kind=all&offset=990&limit=20",
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
