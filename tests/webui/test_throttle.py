"""Finding 6 of issue 20: throttling per client and credential kind, never locking the owner out.

Wrong logins and wrong bearer tokens are counted per client and kind, logged (never the token)
and answered 429 past the limit; the right token always passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from loguru import logger

from tests.webui.conftest import AUTH, BASE_URL, TOKEN

pytestmark = pytest.mark.db

WRONG = "wrong-token-guess-0123456789abcdef"
LOGIN_LIMIT = 5
BEARER_LIMIT = 20


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="DEBUG")
    yield lines
    logger.remove(sink)


def _form_token(client: TestClient) -> str:
    page = client.get("/login")
    return re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def _login(client: TestClient, token: str) -> int:
    response = client.post(
        "/login",
        data={"token": token, "form_token": _form_token(client), "next": "/"},
        follow_redirects=False,
    )
    return response.status_code


def test_the_right_token_logs_in_while_wrong_logins_are_throttled(
    client: TestClient, log_lines: list[str]
) -> None:
    codes = [_login(client, WRONG) for _ in range(LOGIN_LIMIT + 3)]
    assert codes == [401] * LOGIN_LIMIT + [429] * 3
    assert _login(client, TOKEN) == 303  # the owner is not locked out
    client.cookies.clear()
    # after the right token the count starts again
    assert [_login(client, WRONG) for _ in range(2)] == [401, 401]
    logged = "\n".join(log_lines)
    assert logged.count("failed dashboard login from") == LOGIN_LIMIT + 2
    assert "throttling its logins" in logged
    assert WRONG not in logged and TOKEN not in logged


def test_wrong_bearer_tokens_are_throttled_and_logged_never_shown(
    client: TestClient, log_lines: list[str]
) -> None:
    wrong = {"Authorization": f"Bearer {WRONG}"}
    codes = [client.get("/metrics", headers=wrong).status_code for _ in range(BEARER_LIMIT + 10)]
    assert codes == [401] * BEARER_LIMIT + [429] * 10
    refused = client.post("/control/pause", headers=wrong)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert client.get("/health", headers=wrong).status_code == 429
    # the right token works for every kind of request meanwhile
    assert client.get("/metrics", headers=AUTH).status_code == 200
    assert client.post("/control/pause", headers=AUTH).status_code == 200
    assert client.get("/control", headers=AUTH).json()["paused"] is True
    logged = "\n".join(log_lines)
    # one line per wrong token until the throttle starts, then one line saying so
    assert logged.count("wrong API token from") == BEARER_LIMIT
    assert "wrong API tokens from" in logged and "the right token still works" in logged
    assert WRONG not in logged and TOKEN not in logged


def test_throttles_are_per_client_and_per_kind(app: FastAPI) -> None:
    wrong = {"Authorization": f"Bearer {WRONG}"}
    with (
        TestClient(app, base_url=BASE_URL, client=("10.0.0.1", 4000)) as first,
        TestClient(app, base_url=BASE_URL, client=("10.0.0.2", 4000)) as second,
    ):
        for _ in range(BEARER_LIMIT + 1):
            first.get("/metrics", headers=wrong)
        assert first.get("/metrics", headers=wrong).status_code == 429
        assert second.get("/metrics", headers=wrong).status_code == 401  # another client
        assert _login(first, WRONG) == 401  # wrong tokens do not throttle the login form
        for _ in range(LOGIN_LIMIT):
            _login(second, WRONG)
        assert _login(second, WRONG) == 429
        assert second.get("/metrics", headers=wrong).status_code == 401  # nor the reverse
