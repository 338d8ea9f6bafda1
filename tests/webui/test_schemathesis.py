"""Schemathesis against the OpenAPI document on a running server: no 5xx, and every answer
matches its documented status, content type and schema. Bounded: a few examples per endpoint."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from kmg_autotrader.webui import BackgroundServer
from tests.webui.conftest import AUTH
from tests.webui.test_security import API_CALLS

pytestmark = pytest.mark.db

EXAMPLES = 20
OPERATIONS = [
    f"{method} {path}"
    for method, path in [*API_CALLS, ("GET", "/health")]
    if path != "/openapi.json"
]


@pytest.fixture(scope="module")
def api_schema(live_server: BackgroundServer) -> Any:
    response = httpx.get(f"{live_server.url}/openapi.json", headers=AUTH, timeout=10)
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


def test_the_document_covers_every_api_operation(api_schema: Any) -> None:
    labels = {op.ok().label for op in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS)
    for result in api_schema.get_all_operations():
        operation = result.ok()
        assert "200" in operation.definition.raw["responses"], operation.label
        if operation.path != "/health":
            assert "401" in operation.definition.raw["responses"], operation.label


@pytest.mark.parametrize("label", OPERATIONS)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_documented_answers(
    api_schema: Any, live_server: BackgroundServer, label: str, mode: GenerationMode
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
        response = case.call(base_url=live_server.url, headers=AUTH, timeout=15)
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        if response.status_code == 200 and "json" in response.headers.get("content-type", ""):
            case.validate_response(response)  # the body matches the documented model
        else:
            assert str(response.status_code) in operation.definition.raw["responses"], (
                case.method,
                case.formatted_path,
                response.status_code,
                response.text,
            )

    check()
