"""Finding 7 of issue 20: a logout survives a restart of the server.

With a fixed ``API_TOKEN`` and signing key a session cookie stays valid across restarts (by
design); a logged-out one must not come back to life.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import httpx

from kmg_autotrader.webui.auth import CSRF_HEADER, SESSION_COOKIE
from kmg_autotrader.webui.revocations import REVOKED_FILE
from tests.webui.conftest import TOKEN
from tests.webui.process import free_port, kmg_web


def _login(url: str) -> tuple[str, str]:
    """Log in through the form; return the session cookie and the page's CSRF token."""
    with httpx.Client(base_url=url, timeout=10, follow_redirects=True) as client:
        page = client.get("/login")
        form = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        done = client.post("/login", data={"token": TOKEN, "form_token": form, "next": "/"})
        assert done.status_code == 200, done.text  # followed the redirect to the dashboard
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', done.text).group(1)  # type: ignore[union-attr]
        return client.cookies[SESSION_COOKIE], csrf


def _status(url: str, cookie: str) -> int:
    with httpx.Client(base_url=url, timeout=10, cookies={SESSION_COOKIE: cookie}) as client:
        return client.get("/metrics").status_code


def test_a_logged_out_session_stays_out_after_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"API_TOKEN": TOKEN}
    port = free_port()
    with kmg_web(data_dir, port, env) as url:
        kept, _ = _login(url)
        ended, csrf = _login(url)
        with httpx.Client(base_url=url, timeout=10, cookies={SESSION_COOKIE: ended}) as client:
            out = client.post("/logout", headers={CSRF_HEADER: csrf}, follow_redirects=False)
            assert out.status_code == 303
        assert _status(url, ended) == 401 and _status(url, kept) == 200
    with kmg_web(data_dir, free_port(), env) as url:
        assert _status(url, kept) == 200  # sessions survive a restart...
        assert _status(url, ended) == 401  # ...a logout too
    revoked = data_dir / REVOKED_FILE  # ids and expiry times only, readable by the owner only
    assert stat.S_IMODE(revoked.stat().st_mode) == 0o600
    assert ended not in revoked.read_text() and TOKEN not in revoked.read_text()


def test_a_logout_holds_in_process_when_the_file_cannot_be_written(tmp_path: Path) -> None:
    from kmg_autotrader.webui.auth import SessionManager
    from kmg_autotrader.webui.keys import WebCredentials

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where DATA_DIR should be")
    credentials = WebCredentials(api_token=TOKEN, secret_key=b"k" * 32)
    sessions = SessionManager(credentials, revocations_file=blocker / REVOKED_FILE)
    value, principal = sessions.issue()
    assert sessions.verify(value) == principal
    sessions.revoke(principal)  # logs a warning, does not raise
    assert sessions.verify(value) is None
