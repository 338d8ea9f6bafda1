"""Finding 8 of issue 20: every API body is validated strictly (no type coercion).

Before, ``PUT /risk`` stored ``true`` as 1, ``"50.0"`` as 50 and ``"yes"`` as true.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from kmg_autotrader.domain import Mode
from kmg_autotrader.storage.repositories import Repositories
from tests.webui.conftest import AUTH

pytestmark = pytest.mark.db

INTEGER = "max_open_positions"
NUMBER = "max_drawdown_percent"
BOOLEAN = "allow_min_size_adjust"
NULLABLE = "stake_amount"

WRONG_TYPES: list[tuple[str, Any]] = [
    *[(INTEGER, v) for v in (True, False, "5", "50.0", 5.5, 1e-9 + 5, None, [], {}, "")],
    *[(NUMBER, v) for v in (True, "50.0", "50", "yes", None, [4.0], {"v": 4}, "")],
    *[(BOOLEAN, v) for v in (1, 0, "yes", "true", "false", "on", None, [], 1.0)],
    *[(NULLABLE, v) for v in (True, "100", "", [], {})],
    *[("cooldown_minutes", v) for v in (True, "30", 30.5)],
    *[("slippage_bps", v) for v in (False, "5")],
]


@pytest.mark.parametrize(("field", "value"), WRONG_TYPES)
def test_a_wrong_type_is_refused_and_nothing_is_stored(
    client: TestClient, repos: Repositories, field: str, value: Any
) -> None:
    response = client.put("/risk", headers=AUTH, json={"changes": {field: value}})
    assert response.status_code == 422, (field, value, response.text)
    assert f"changes.{field}" in {e["field"] for e in response.json()["errors"]}
    assert repos.risk_params.latest(Mode.PAPER) is None


@pytest.mark.parametrize("comment", [5, None, ["why"], {"why": 1}, True])
def test_a_comment_must_be_a_string(client: TestClient, repos: Repositories, comment: Any) -> None:
    body = {"changes": {INTEGER: 2}, "comment": comment}
    assert client.put("/risk", headers=AUTH, json=body).status_code == 422
    assert repos.risk_params.latest(Mode.PAPER) is None


def test_the_right_types_are_accepted(client: TestClient, repos: Repositories) -> None:
    # JSON Schema: an integer is a number, and 4.0 is an integer
    changes = {INTEGER: 4.0, NUMBER: 7, BOOLEAN: True, NULLABLE: 250, "slippage_bps": 2.5}
    response = client.put("/risk", headers=AUTH, json={"changes": changes, "comment": "typed"})
    assert response.status_code == 200, response.text
    params = response.json()["params"]
    assert params[INTEGER] == 4 and params[NUMBER] == 7.0 and params[BOOLEAN] is True
    assert params[NULLABLE] == 250.0
    cleared = client.put("/risk", headers=AUTH, json={"changes": {NULLABLE: None}})
    assert cleared.status_code == 200 and cleared.json()["params"][NULLABLE] is None


@pytest.mark.parametrize("path", ["/control/flatten", "/control/clear-breaker"])
@pytest.mark.parametrize("confirm", [1, 1.0, "true", "yes", None, [True], {"confirm": True}])
def test_a_confirmation_must_be_the_json_true(client: TestClient, path: str, confirm: Any) -> None:
    response = client.post(path, headers=AUTH, json={"confirm": confirm})
    assert response.status_code == 422, (path, confirm, response.text)
    assert client.get("/control", headers=AUTH).json()["paused"] is False
