"""Finding 11 of issue 20 (transport): the session cookie is ``Secure`` behind TLS, and a
loopback dashboard answers only to its own names (DNS-rebinding guard)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui import create_app
from kmg_autotrader.webui.auth import CSRF_HEADER, SESSION_COOKIE
from tests.webui.conftest import AUTH, BASE_URL, TOKEN, make_settings

pytestmark = pytest.mark.db


def _login_cookie(client: TestClient, **headers: str) -> str:
    page = client.get("/login")
    form = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/login",
        data={"token": TOKEN, "form_token": form, "next": "/"},
        headers=headers,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    cookie: str = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    return cookie


def _secure(cookie: str) -> bool:
    return "secure" in [part.strip().lower() for part in cookie.split(";")]


def test_plain_http_on_loopback_gets_no_secure_flag(client: TestClient) -> None:
    assert not _secure(_login_cookie(client))


def test_behind_a_tls_proxy_the_cookie_is_secure_and_csrf_expects_https(
    repos: Repositories, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "d", web_tls_proxy=True)
    with TestClient(create_app(settings, repos), base_url=BASE_URL) as client:
        cookie = _login_cookie(client)
        assert _secure(cookie)
        # the client (http here) rightly keeps a Secure cookie to itself: the proxy would send it
        session = {"Cookie": cookie.split(";")[0]}
        dashboard = client.get("/", headers=session)
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', dashboard.text).group(1)  # type: ignore[union-attr]
        # the browser's origin is the proxy's https one
        http_origin = {**session, CSRF_HEADER: csrf, "Origin": "http://127.0.0.1"}
        https_origin = {**session, CSRF_HEADER: csrf, "Origin": "https://127.0.0.1"}
        assert client.post("/control/pause", headers=http_origin).status_code == 403
        assert client.post("/control/pause", headers=https_origin).status_code == 200


def test_a_forwarded_https_counts_only_from_a_proxy_on_this_machine(app: object) -> None:
    forwarded = {"X-Forwarded-Proto": "https"}
    with TestClient(app, base_url=BASE_URL, client=("127.0.0.1", 50000)) as local:  # type: ignore[arg-type]
        assert _secure(_login_cookie(local, **forwarded))
        assert not _secure(_login_cookie(local))
    with TestClient(app, base_url=BASE_URL, client=("10.1.2.3", 50000)) as remote:  # type: ignore[arg-type]
        assert not _secure(_login_cookie(remote, **forwarded))


@pytest.mark.parametrize(
    "base_url",
    [
        "http://evil.example",
        "http://evil.example:8000",
        "http://127.0.0.1.evil.example",
        "http://localhost.evil.example:8000",
        "http://192.168.1.20:8000",
    ],
)
def test_a_loopback_dashboard_refuses_other_host_names(app: object, base_url: str) -> None:
    with TestClient(app, base_url=base_url) as client:  # type: ignore[arg-type]
        for path in ("/health", "/login", "/metrics"):
            response = client.get(path, headers=AUTH)
            assert response.status_code == 400, (base_url, path)
            assert "DNS-rebinding" in response.json()["detail"]
        assert client.post("/control/pause", headers=AUTH).status_code == 400
        assert client.get("/control", headers=AUTH).status_code == 400


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1",
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://LOCALHOST",
        "http://[::1]:8000",
    ],
)
def test_a_loopback_dashboard_answers_to_its_own_names(app: object, base_url: str) -> None:
    with TestClient(app, base_url=base_url) as client:  # type: ignore[arg-type]
        assert client.get("/metrics", headers=AUTH).status_code == 200


def test_a_public_or_proxied_dashboard_takes_any_host_name(
    repos: Repositories, tmp_path: Path
) -> None:
    for overrides in ({"web_host": "0.0.0.0"}, {"web_tls_proxy": True}):
        settings = make_settings(tmp_path / "d", **overrides)
        with TestClient(create_app(settings, repos), base_url="http://bot.example") as client:
            assert client.get("/metrics", headers=AUTH).status_code == 200, overrides
