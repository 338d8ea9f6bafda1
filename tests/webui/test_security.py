"""Authentication, CSRF, secrets, CORS, start-up refusal and the generated credentials."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kmg_autotrader.config import Settings
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui import WebSecurityError, create_app
from kmg_autotrader.webui.auth import CSRF_HEADER, SESSION_COOKIE
from kmg_autotrader.webui.keys import SECRET_KEY_FILE, TOKEN_FILE, prepare_credentials
from tests.webui.conftest import AUTH, BASE_URL, TOKEN, make_settings

pytestmark = pytest.mark.db

API_CALLS = [
    ("GET", "/metrics"),
    ("GET", "/equity"),
    ("GET", "/positions"),
    ("GET", "/trades"),
    ("GET", "/signals"),
    ("GET", "/signals/rejections"),
    ("GET", "/advisor/confidence"),
    ("GET", "/risk"),
    ("PUT", "/risk"),
    ("GET", "/logs"),
    ("GET", "/ml/status"),
    ("GET", "/control"),
    ("POST", "/control/pause"),
    ("POST", "/control/resume"),
    ("POST", "/control/flatten"),
    ("POST", "/control/clear-breaker"),
    ("GET", "/events/stream"),
    ("GET", "/openapi.json"),
]


def login(client: TestClient, token: str = TOKEN) -> str:
    """Log in through the form; return the page's CSRF token."""
    page = client.get("/login")
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/login",
        data={"token": token, "form_token": form_token, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    dashboard = client.get("/")
    return re.search(r'name="csrf-token" content="([^"]+)"', dashboard.text).group(1)  # type: ignore[union-attr]


def test_every_api_route_is_listed_here(app: FastAPI) -> None:
    from kmg_autotrader.webui.openapi import build_openapi

    documented = {
        (method.upper(), path)
        for path, ops in build_openapi(app)["paths"].items()
        for method in ops
    }
    assert documented - {("GET", "/health")} == set(API_CALLS) - {("GET", "/openapi.json")}


@pytest.mark.parametrize(("method", "path"), API_CALLS)
def test_401_without_auth(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"].startswith("authentication required")
    wrong = client.request(method, path, headers={"Authorization": "Bearer wrong-token"})
    assert wrong.status_code == 401


def test_health_and_login_page_are_public(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/login").status_code == 200
    assert client.get("/static/vendor/chart.umd.min.js").status_code == 200


def test_pages_redirect_to_login(client: TestClient) -> None:
    for path in ("/", "/ui/signals", "/ui/risk", "/ui/logs"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path}"


def test_login_sets_a_strict_httponly_expiring_cookie(client: TestClient) -> None:
    page = client.get("/login")
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/login",
        data={"token": TOKEN, "form_token": form_token, "next": "/ui/risk"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/ui/risk"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    assert TOKEN not in cookie
    assert client.get("/metrics").status_code == 200  # the cookie authenticates


def test_login_refuses_a_wrong_token_and_throttles(client: TestClient) -> None:
    for attempt in range(6):
        page = client.get("/login")
        form_token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        response = client.post(
            "/login", data={"token": "nope", "form_token": form_token}, follow_redirects=False
        )
        assert response.status_code == (401 if attempt < 5 else 429)
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert client.get("/metrics").status_code == 401


def test_login_needs_the_form_token_and_never_redirects_off_site(client: TestClient) -> None:
    no_form = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert no_form.status_code == 400
    page = client.get("/login")
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/login",
        data={"token": TOKEN, "form_token": form_token, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_cookie_session_needs_csrf_for_state_changes(client: TestClient) -> None:
    csrf = login(client)
    assert client.post("/control/pause").status_code == 403
    assert client.post("/control/pause", headers={CSRF_HEADER: "forged"}).status_code == 403
    assert client.put("/risk", json={"changes": {"max_open_positions": 4}}).status_code == 403
    cross = client.post(
        "/control/pause", headers={CSRF_HEADER: csrf, "Origin": "http://evil.example"}
    )
    assert cross.status_code == 403
    ok = client.post("/control/pause", headers={CSRF_HEADER: csrf, "Origin": BASE_URL})
    assert ok.status_code == 200 and ok.json()["paused"] is True
    assert client.get("/risk").status_code == 200  # reads need no CSRF token


def test_logout_revokes_the_session(client: TestClient) -> None:
    csrf = login(client)
    cookie = client.cookies.get(SESSION_COOKIE)
    response = client.post("/logout", headers={CSRF_HEADER: csrf}, follow_redirects=False)
    assert response.status_code == 303
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie or "")  # replaying the old cookie does not work
    assert client.get("/metrics").status_code == 401


def test_a_tampered_or_foreign_cookie_is_refused(
    client: TestClient, web_settings: Settings, repos: Repositories
) -> None:
    login(client)
    value = client.cookies.get(SESSION_COOKIE) or ""
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1])
    assert client.get("/metrics").status_code == 401
    # a session signed before the token changed is no longer valid
    other = create_app(
        make_settings(web_settings.data_dir, api_token="another-token-abcdef123456"), repos
    )
    with TestClient(other, base_url=BASE_URL) as second:
        second.cookies.set(SESSION_COOKIE, value)
        assert second.get("/metrics").status_code == 401


def test_no_wildcard_cors_and_security_headers(client: TestClient) -> None:
    preflight = client.options(
        "/metrics",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    response = client.get("/metrics", headers={**AUTH, "Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_no_secret_in_any_response(tmp_path: Path, repos: Repositories) -> None:
    secrets = {
        "api_token": TOKEN,
        "web_secret_key": "signing-key-0123456789-abcdef",
        "openai_api_key": "sk-test-secret-openai-key-123456",
        "binance_api_key": "binance-key-AAAABBBBCCCC",
        "binance_secret_key": "binance-secret-DDDDEEEEFFFF",
        "telegram_token": "123456789:telegram-secret-token-abcdefghijklmnopq",
        "telegram_chat_id": "42",
    }
    settings = make_settings(tmp_path / "data", **secrets)
    # a secret that leaked into a record (an exception message) is still never served
    repos.events.add(
        "paper", "exchange_error", f"failed with key {secrets['binance_api_key']}", level="error"
    )
    app = create_app(settings, repos)
    with TestClient(app, base_url=BASE_URL) as client:
        bodies = {"public health": client.get("/health").text, "login": client.get("/login").text}
        gets = [path for method, path in API_CALLS if method == "GET" and "stream" not in path]
        for path in [*gets, "/health", "/", "/ui/signals", "/ui/risk", "/ui/logs"]:
            bodies[path] = client.get(path, headers=AUTH).text
        for method, path in API_CALLS:
            if method != "GET":  # error answers too (an empty body is refused)
                bodies[f"{method} {path}"] = client.request(method, path, headers=AUTH).text
    for body in bodies.values():
        for name, value in secrets.items():
            if name != "telegram_chat_id":
                assert value not in body, name
    assert "failed with key ***" in bodies["/logs"]  # the leaked secret, redacted


def test_refuses_to_start_on_a_public_host_without_token(
    tmp_path: Path, repos: Repositories
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, web_host="0.0.0.0")  # type: ignore[call-arg]
    with pytest.raises(WebSecurityError, match="API_TOKEN"):
        create_app(settings, repos)
    public = make_settings(tmp_path, web_host="0.0.0.0")
    assert create_app(public, repos) is not None  # with a token it starts


def test_loopback_without_token_generates_a_private_one_time_token(
    tmp_path: Path, repos: Repositories
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    credentials = prepare_credentials(settings)
    assert credentials.token_source == "generated" and credentials.token_file is not None
    token_file = tmp_path / "data" / TOKEN_FILE
    assert token_file.read_text().strip() == credentials.api_token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    key_file = tmp_path / "data" / SECRET_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert credentials.api_token not in repr(credentials)
    # the key is kept across starts, the one-time token is not
    again = prepare_credentials(settings)
    assert again.secret_key == credentials.secret_key
    assert again.api_token != credentials.api_token
    app = create_app(settings, repos, credentials=again)
    with TestClient(app, base_url=BASE_URL) as client:
        assert client.post("/control/pause").status_code == 401
        bearer = {"Authorization": f"Bearer {again.api_token}"}
        assert client.post("/control/pause", headers=bearer).status_code == 200
        login_page = client.get("/login").text
        # where the token is stays off the public page (issue 19): the terminal says
        assert str(token_file) not in login_page and again.api_token not in login_page
        assert "terminal" in login_page


def test_short_signing_key_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, web_secret_key="short")
    with pytest.raises(WebSecurityError, match="WEB_SECRET_KEY"):
        prepare_credentials(settings)


def test_token_comparison_is_constant_time() -> None:
    import inspect

    from kmg_autotrader.webui import keys

    source = inspect.getsource(keys.WebCredentials.token_matches)
    assert "hmac.compare_digest" in source
