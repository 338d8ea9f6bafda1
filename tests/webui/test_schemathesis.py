"""Schemathesis against the OpenAPI document on a running server, with **every** check
(``--checks all``): no 5xx, documented statuses, content types, headers and schemas, valid data
accepted, invalid data refused, auth enforced, 405 with the right ``Allow``. Bounded: a few
examples per endpoint. Finding 10 of issue 20: the document and the server agree.

The CLI's coverage phase (unsupported methods, missing headers, boundary values) runs in the
probe (``tests/webui/test_probe.py``, ``scripts/probe_web.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from kmg_autotrader.domain.clock import now_ms
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui import BackgroundServer, create_app
from kmg_autotrader.webui.auth import CredentialThrottle
from tests.webui.conftest import AUTH, BASE_URL, make_settings
from tests.webui.seed import seed
from tests.webui.test_security import API_CALLS

pytestmark = pytest.mark.db

EXAMPLES = 20
OPERATIONS = [
    f"{method} {path}"
    for method, path in [*API_CALLS, ("GET", "/health")]
    if path != "/openapi.json"
]
# operations with query parameters or a body: the only ones invalid data can be made for
WITH_INPUTS = [
    "GET /equity",
    "GET /trades",
    "GET /signals",
    "GET /signals/rejections",
    "GET /advisor/confidence",
    "PUT /risk",
    "GET /logs",
    "POST /control/flatten",
    "POST /control/clear-breaker",
]
load_all_checks()
ALL_CHECKS = CHECKS.get_all()


@pytest.fixture(scope="module")
def conformance_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """A seeded server whose bearer throttle never trips: the ``ignored_auth`` check sends a
    wrong token after every accepted case and expects 401 (the throttle's 429 after 20 wrong
    tokens a minute is tested in test_throttle.py)."""
    root = tmp_path_factory.mktemp("conformance")
    database = open_database(f"sqlite:///{root / 'web.sqlite'}")
    repos = Repositories(database)
    seed(repos)
    settings = make_settings(root / "data")
    relaxed = CredentialThrottle(limits={"login": 5, "bearer": 1_000_000})
    app = create_app(settings, repos, throttle=relaxed, poll_seconds=0.2, stream_max_seconds=2.0)
    server = BackgroundServer(app, settings, port=0).start()
    yield server
    server.stop()
    database.dispose()


@pytest.fixture(scope="module")
def document(conformance_server: BackgroundServer) -> dict[str, Any]:
    response = httpx.get(f"{conformance_server.url}/openapi.json", headers=AUTH, timeout=10)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


@pytest.fixture(scope="module")
def api_schema(document: dict[str, Any]) -> Any:
    # the token as a configured header (like the CLI's -H), not a generated parameter: a case
    # "without Authorization" sent with the token anyway would be a false negative case
    config = SchemathesisConfig.from_dict(
        {"headers": AUTH, "generation": {"with-security-parameters": False}}
    )
    return schemathesis.openapi.from_dict(document, config=config)


def test_every_check_is_run() -> None:
    assert {check.__name__ for check in ALL_CHECKS} >= {
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "use_after_free",
        "ensure_resource_availability",
        "ignored_auth",
    }


def test_the_document_covers_every_api_operation(api_schema: Any) -> None:
    labels = {op.ok().label for op in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS)
    for result in api_schema.get_all_operations():
        operation = result.ok()
        assert "200" in operation.definition.raw["responses"], operation.label
        if operation.path != "/health":
            assert "401" in operation.definition.raw["responses"], operation.label


def test_health_is_documented_as_public(document: dict[str, Any]) -> None:
    security = document["paths"]["/health"]["get"]["security"]
    assert {} in security  # no credentials needed; a token adds details
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path != "/health":
                assert operation["security"] == [{"bearer": []}], (method, path)


def test_the_documented_examples_are_accepted(
    document: dict[str, Any], conformance_server: BackgroundServer
) -> None:
    put = document["paths"]["/risk"]["put"]
    body_ref = put["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = document["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    examples = body_schema["examples"]
    assert examples
    with httpx.Client(base_url=conformance_server.url, headers=AUTH, timeout=10) as client:
        for example in examples:
            response = client.put("/risk", json=example)
            assert response.status_code == 200, (example, response.text)
            for name, value in example["changes"].items():
                assert response.json()["params"][name] == value


@pytest.mark.parametrize("path", ["/risk", "/control", "/logs", "/control/pause"])
def test_405_and_options_name_every_method_of_the_path(
    document: dict[str, Any], conformance_server: BackgroundServer, path: str
) -> None:
    documented = {m.upper() for m in document["paths"][path]}
    with httpx.Client(base_url=conformance_server.url, headers=AUTH, timeout=10) as client:
        for method in ("OPTIONS", "DELETE", "PATCH"):
            response = client.request(method, path)
            assert response.status_code == 405, (method, path)
            allowed = {m.strip() for m in response.headers["allow"].split(",")}
            assert allowed - {"HEAD"} == documented, (method, path, allowed)


def test_logs_accepts_every_documented_offset(
    document: dict[str, Any], conformance_server: BackgroundServer
) -> None:
    params = {p["name"]: p["schema"] for p in document["paths"]["/logs"]["get"]["parameters"]}
    deepest = params["offset"]["maximum"]
    widest = params["limit"]["maximum"]
    with httpx.Client(base_url=conformance_server.url, headers=AUTH, timeout=10) as client:
        for kind in ("all", "order", "event"):
            response = client.get(
                "/logs", params={"kind": kind, "offset": deepest, "limit": widest}
            )
            assert response.status_code == 200, (kind, response.text)
            assert response.json()["items"] == [] and response.json()["has_more"] is False


def test_the_operations_with_inputs_are_the_negative_ones(document: dict[str, Any]) -> None:
    with_inputs = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("parameters") or operation.get("requestBody")
    }
    assert with_inputs == set(WITH_INPUTS)


CASES = [(label, GenerationMode.POSITIVE) for label in OPERATIONS] + [
    (label, GenerationMode.NEGATIVE)
    for label in WITH_INPUTS  # nothing to negate elsewhere
]


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_every_check_passes(
    api_schema: Any, conformance_server: BackgroundServer, label: str, mode: GenerationMode
) -> None:
    operation = api_schema.find_operation_by_label(label)
    examples = 1 if operation.path == "/events/stream" else EXAMPLES

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        case.call_and_validate(base_url=conformance_server.url, timeout=15, checks=ALL_CHECKS)

    check()


def test_logs_page_deep_into_the_merged_list(repos: Repositories, tmp_path: Path) -> None:
    """``kind=all`` pages past 1,000 rows (it was refused) without gaps, repeats or disorder."""
    now = now_ms()
    for i in range(1_030):  # pairs share a time; the alerts (stored now) fall in between
        repos.events.add("paper", "tick", f"event {i}", created_at=now - 500_000 + (i // 2) * 1000)
    for i in range(3):
        repos.alerts.add("paper", event="test", title=f"alert {i}", body="", status="sent")
    with TestClient(create_app(make_settings(tmp_path / "d"), repos), base_url=BASE_URL) as client:
        walked: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = client.get(f"/logs?limit=200&offset={offset}", headers=AUTH).json()
            walked += page["items"]
            if not page["has_more"]:
                break
            offset += 200
        ids = [item["id"] for item in walked]
        assert len(ids) == len(set(ids)) == 1_033
        times = [item["time"] for item in walked]
        assert times == sorted(times, reverse=True)
        deep = client.get("/logs?limit=7&offset=1010", headers=AUTH)
        assert deep.status_code == 200, deep.text
        assert [item["id"] for item in deep.json()["items"]] == ids[1010:1017]
        middle = client.get("/logs?limit=5&offset=529", headers=AUTH).json()["items"]
        assert [item["id"] for item in middle] == ids[529:534]
