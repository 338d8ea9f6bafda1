#!/usr/bin/env python3
"""Adversarial probe of the dashboard and API (issue 20), seeded and repeatable.

    python scripts/probe_web.py                  # full probe
    python scripts/probe_web.py --quick --seed 7 # the short version the test suite runs

It starts its own throwaway servers (PAPER, a temporary DATA_DIR, seeded SQLite records) on
127.0.0.1 and attacks them; it never touches your bot, your data or the network. Sections:

* credentials: no, wrong, truncated, mangled, Basic, query-string tokens and forged, tampered,
  foreign-key, expired, stale-token and logged-out session cookies (plus cookies without CSRF
  or from another origin) on every state-changing and data endpoint; each must be refused and
  nothing may change; a spray of wrong tokens is throttled while the right token still works;
* bodies: 50 MB bodies (declared, with and without a token) and chunked bodies over 64 KB are
  refused at once while /health keeps answering;
* types: wrong JSON types for every risk parameter, the comment and the confirmations: 422,
  nothing stored;
* host: foreign Host names (DNS rebinding): 400;
* secrets: no token ever appears in a response or the log;
* schemathesis run --checks all (coverage and fuzzing phases) with the same seed.

Prints one line per section and then ``N tried, M failed``; exits 1 when M > 0.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
for entry in (str(ROOT / "src"), str(ROOT)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import httpx  # noqa: E402
from itsdangerous import TimestampSigner, URLSafeTimedSerializer  # noqa: E402
from loguru import logger  # noqa: E402

REFUSED = {401, 403, 429}
FIFTY_MB = 50 * 1024 * 1024
CAP = 64 * 1024
PAGES = ["/", "/ui/signals", "/ui/risk", "/ui/logs"]
BODIES: dict[str, Any] = {
    "PUT /risk": {"changes": {"max_open_positions": 1}, "comment": "probe"},
    "POST /control/flatten": {"confirm": True},
    "POST /control/clear-breaker": {"confirm": True},
}
WRONG_BY_TYPE: dict[str, list[Any]] = {
    "integer": [True, False, "5", "5.0", 5.5, None, [], {}, "", "1e2"],
    "number": [True, False, "0.5", "yes", None, [0.5], {"v": 1}, "", "NaN"],
    "boolean": [1, 0, "yes", "true", "false", "on", None, [], 1.0],
    "nullable": [True, "100", "", [], {}],
}
FOREIGN_HOSTS = ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "10.0.0.7:80"]


@dataclass
class Tally:
    """Attempts and failures of one section."""

    name: str
    tried: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        """Count one attempt; keep a line for a failed one."""
        self.tried += 1
        if not ok:
            self.failures.append(what)

    @property
    def failed(self) -> int:
        """Failed attempts."""
        return len(self.failures)


@dataclass
class Target:
    """A running dashboard the probe owns."""

    url: str
    token: str
    data_dir: Path
    sent_tokens: set[str] = field(default_factory=set)  # every wrong token, for the log check
    bodies: list[str] = field(default_factory=list)  # every response body, for the secret check

    @property
    def auth(self) -> dict[str, str]:
        """The right bearer header."""
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client on the target (redirects are not followed)."""
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)

    def state(self) -> tuple[int, bool, int]:
        """Risk version, pause state and the number of flatten requests, read with the token."""
        with self.client(headers=self.auth) as client:
            version = client.get("/risk").json()["version"]
            paused = client.get("/control").json()["paused"]
            events = client.get("/logs", params={"kind": "event", "limit": 200}).json()["items"]
        return int(version), bool(paused), sum("flatten" in e["title"] for e in events)


# ---- servers ------------------------------------------------------------------------------------


@dataclass
class Servers:
    """The attacked server and a conformance server for schemathesis, both seeded."""

    target: Target
    conformance: Target
    stop: Callable[[], None]


def start_servers(root: Path, token: str) -> Servers:
    """Two seeded servers on free loopback ports (each its own DATA_DIR and SQLite file)."""
    from tests.webui.seed import seed

    from kmg_autotrader.config import Settings
    from kmg_autotrader.logging_setup import setup_logging
    from kmg_autotrader.storage.database import open_database
    from kmg_autotrader.storage.repositories import Repositories
    from kmg_autotrader.webui import BackgroundServer, create_app
    from kmg_autotrader.webui.auth import CredentialThrottle

    setup_logging(level="DEBUG", data_dir=root / "logs-home", console=False)
    # uvicorn's own "Invalid HTTP request received." lines (the probe sends such requests)
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    running: list[Any] = []
    targets = []
    for name in ("target", "conformance"):
        data_dir = root / name / "data"
        database = open_database(f"sqlite:///{root / name / 'web.sqlite'}")
        repos = Repositories(database)
        seed(repos)
        settings = Settings(_env_file=None, data_dir=data_dir, api_token=token)  # type: ignore[call-arg]
        # schemathesis' ignored_auth check sends a wrong token after every accepted case and
        # expects 401: its server does not throttle (the target's throttle is probed below)
        throttle = (
            CredentialThrottle(limits={"login": 5, "bearer": 10**9})
            if name == "conformance"
            else None
        )
        app = create_app(
            settings, repos, throttle=throttle, poll_seconds=0.2, stream_max_seconds=1.0
        )
        server = BackgroundServer(app, settings, port=0).start()
        running.append((server, database))
        targets.append(Target(server.url, token, data_dir))

    def stop() -> None:
        for server, database in running:
            server.stop()
            database.dispose()

    return Servers(targets[0], targets[1], stop)


# ---- credentials ------------------------------------------------------------------------------


def _operations(target: Target) -> list[tuple[str, str]]:
    with target.client(headers=target.auth) as client:
        document = client.get("/openapi.json").json()
    found = [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if path != "/health"
    ]
    return [*found, ("GET", "/openapi.json")]


def _session(target: Target) -> tuple[str, str]:
    """A fresh login: the session cookie value and its CSRF token."""
    with target.client(follow_redirects=True) as client:
        page = client.get("/login")
        form = re.search(r'name="form_token" value="([^"]+)"', page.text)
        assert form is not None, "no login form"
        done = client.post(
            "/login", data={"token": target.token, "form_token": form.group(1), "next": "/"}
        )
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', done.text)
        assert csrf is not None, "login failed"
        return client.cookies["kmg_session"], csrf.group(1)


def _signed_cookie(key: bytes, *, fingerprint: str, age_seconds: int = 0) -> str:
    """A session cookie signed with ``key`` (the probe owns the server, so it may read it)."""

    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_seconds

    serializer = URLSafeTimedSerializer(key, salt="kmg-web-session", signer=Backdated)
    return serializer.dumps({"sid": "probe", "csrf": "probe-csrf", "tf": fingerprint})


def credential_variants(target: Target, rng: random.Random) -> dict[str, dict[str, Any]]:
    """Name → request options (headers, cookies, params) that must not authenticate."""
    from kmg_autotrader.webui.keys import SECRET_KEY_FILE, WebCredentials

    wrong = f"probe-{rng.getrandbits(128):032x}"
    target.sent_tokens.add(wrong)
    real_key = (target.data_dir / SECRET_KEY_FILE).read_text().strip().encode()
    fingerprint = WebCredentials(api_token=target.token, secret_key=real_key).token_fingerprint
    stale = WebCredentials(api_token="an-older-token-0000", secret_key=real_key).token_fingerprint
    cookie, csrf = _session(target)
    flipped = cookie[:-3] + ("A" if cookie[-3] != "A" else "B") + cookie[-2:]
    ended, ended_csrf = _session(target)
    with target.client(cookies={"kmg_session": ended}) as client:
        client.post("/logout", headers={"X-CSRF-Token": ended_csrf})
    basic = base64.b64encode(f"kmg:{target.token}".encode()).decode()
    variants: dict[str, dict[str, Any]] = {
        "no credentials": {},
        "wrong bearer": {"headers": {"Authorization": f"Bearer {wrong}"}},
        "empty bearer": {"headers": {"Authorization": "Bearer"}},
        "truncated token": {"headers": {"Authorization": f"Bearer {target.token[:-1]}"}},
        "token plus a char": {"headers": {"Authorization": f"Bearer {target.token}x"}},
        "token in other case": {"headers": {"Authorization": f"Bearer {target.token.swapcase()}"}},
        "token as Basic": {"headers": {"Authorization": f"Basic {basic}"}},
        "token, other scheme": {"headers": {"Authorization": f"Token {target.token}"}},
        "token in the query": {"params": {"token": target.token, "access_token": target.token}},
        "forged cookie": {"cookies": {"kmg_session": f"{rng.getrandbits(256):064x}"}},
        "tampered cookie": {"cookies": {"kmg_session": flipped}},
        "foreign-key cookie": {
            "cookies": {
                "kmg_session": _signed_cookie(b"k" * 32, fingerprint=fingerprint),
            }
        },
        "expired cookie": {
            "cookies": {
                "kmg_session": _signed_cookie(
                    real_key, fingerprint=fingerprint, age_seconds=13 * 3600
                )
            }
        },
        "stale-token cookie": {
            "cookies": {"kmg_session": _signed_cookie(real_key, fingerprint=stale)}
        },
        "logged-out cookie": {"cookies": {"kmg_session": ended}},
    }
    # the right cookie on a state-changing request still needs its CSRF token and our origin
    variants["cookie without CSRF"] = {"cookies": {"kmg_session": cookie}, "unsafe_only": True}
    variants["cookie, wrong CSRF"] = {
        "cookies": {"kmg_session": cookie},
        "headers": {"X-CSRF-Token": "forged"},
        "unsafe_only": True,
    }
    variants["cookie, other origin"] = {
        "cookies": {"kmg_session": cookie},
        "headers": {"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
        "unsafe_only": True,
    }
    return variants


def probe_credentials(
    target: Target, rng: random.Random, *, quick: bool, operations: list[tuple[str, str]]
) -> Tally:
    """Every bad credential on every operation and page: refused, and nothing changes."""
    tally = Tally("credentials × endpoints")
    before = target.state()
    variants = credential_variants(target, rng)
    pages = [("GET", path) for path in PAGES]
    combos = [
        (name, method, path)
        for name, options in variants.items()
        for method, path in [*operations, *pages]
        if not (options.get("unsafe_only") and method == "GET")
    ]
    if quick:
        combos = rng.sample(combos, min(len(combos), 120))
    for name, method, path in combos:
        options = {k: v for k, v in variants[name].items() if k != "unsafe_only"}
        body = BODIES.get(f"{method} {path}")
        with target.client(cookies=options.pop("cookies", None)) as client:
            response = client.request(method, path, json=body, **options)
        target.bodies.append(response.text)
        if (method, path) in pages:  # sent to the login page (or throttled)
            location = response.headers.get("location", "")
            ok = response.status_code == 429 or (
                response.status_code == 303 and "/login" in location
            )
        else:
            ok = response.status_code in REFUSED
        tally.check(ok, f"{name}: {method} {path} -> {response.status_code}")
    # /health is public but keeps its details to authenticated callers (the unsafe-only
    # variants carry a valid session: on a GET they are authenticated, rightly)
    refused = sorted(name for name, options in variants.items() if "unsafe_only" not in options)
    for name in rng.sample(refused, 4 if quick else len(refused)):
        options = {k: v for k, v in variants[name].items() if k != "unsafe_only"}
        with target.client(cookies=options.pop("cookies", None)) as client:
            response = client.get("/health", **options)
        public = response.status_code == 429 or set(response.json()) <= {
            "status",
            "mode",
            "time",
            "version",
        }
        tally.check(public, f"{name}: GET /health showed details")
    # a spray of wrong tokens is throttled, and the owner's token still works meanwhile
    spray = 40 if quick else 300
    codes = []
    with target.client() as client:
        for _ in range(spray):
            guess = f"probe-{rng.getrandbits(128):032x}"
            target.sent_tokens.add(guess)
            codes.append(
                client.get("/metrics", headers={"Authorization": f"Bearer {guess}"}).status_code
            )
        owner = client.get("/metrics", headers=target.auth).status_code
    tally.check(all(c in REFUSED for c in codes), f"token spray answered {set(codes)}")
    tally.check(429 in codes, "no throttling after a spray of wrong tokens")
    tally.check(owner == 200, f"the right token got {owner} while wrong ones were throttled")
    after = target.state()
    tally.check(after == before, f"state changed by refused requests: {before} -> {after}")
    return tally


# ---- bodies -----------------------------------------------------------------------------------


def _read_head(sock: socket.socket, timeout: float) -> str:
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionError):
        pass
    return data.decode("latin-1")


def _huge_request(target: Target, method: str, path: str, auth: bool) -> tuple[str, float]:
    parts = urlsplit(target.url)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {FIFTY_MB}\r\n"
        + (f"Authorization: Bearer {target.token}\r\n" if auth else "")
        + "\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        # the server may answer and close before all of it is sent: then read what it said
        with contextlib.suppress(ConnectionError):
            sock.sendall(head + b'{"changes": {"x": "' + b"y" * (256 * 1024))
        answer = _read_head(sock, timeout=3)
    return answer, time.monotonic() - started


def probe_bodies(target: Target, rng: random.Random, *, quick: bool) -> Tally:
    """50 MB declared bodies and chunked bodies over the cap: 413 at once, /health answers."""
    tally = Tally("oversized bodies")
    before = target.state()
    endpoints = ["PUT /risk", "POST /control/pause", "POST /control/flatten", "POST /login"]
    endpoints += ["POST /control/resume", "POST /control/clear-breaker"]
    if quick:
        endpoints = rng.sample(endpoints, 3)
    stop = threading.Event()
    slowest = [0.0]

    def watch_health() -> None:
        with target.client() as client:
            while not stop.is_set():
                started = time.monotonic()
                client.get("/health")
                slowest[0] = max(slowest[0], time.monotonic() - started)
                time.sleep(0.05)

    watcher = threading.Thread(target=watch_health, daemon=True)
    watcher.start()
    try:
        for endpoint in endpoints:
            method, path = endpoint.split(" ")
            for auth in (False, True):
                answer, took = _huge_request(target, method, path, auth)
                ok = answer.startswith("HTTP/1.1 413") and took < 3
                status = answer.split("\r\n", 1)[0] or "no answer"
                tally.check(ok, f"50 MB {endpoint} (token: {auth}) -> {status} in {took:.1f} s")
        # chunked (no Content-Length): counted as it streams, on the routes that read a body
        for endpoint in ["PUT /risk", "POST /control/flatten", "POST /login"]:
            method, path = endpoint.split(" ")
            if path == "/login":
                kind, padded = "application/x-www-form-urlencoded", b"token=" + b"a" * (CAP + 10)
            else:
                kind = "application/json"
                padded = b'{"changes": {"max_open_positions": 2}' + b" " * (CAP + 10) + b"}"

            def chunks(data: bytes = padded) -> Iterator[bytes]:
                for start in range(0, len(data), 8192):
                    yield data[start : start + 8192]

            with target.client(headers={**target.auth, "Content-Type": kind}) as client:
                response = client.request(method, path, content=chunks())
            tally.check(
                response.status_code == 413, f"chunked {endpoint} -> {response.status_code}"
            )
    finally:
        stop.set()
        watcher.join(5)
    tally.check(slowest[0] < 1.0, f"/health took {slowest[0]:.2f} s during the big bodies")
    after = target.state()
    tally.check(after == before, f"state changed by refused bodies: {before} -> {after}")
    return tally


# ---- types ------------------------------------------------------------------------------------


def probe_types(target: Target, rng: random.Random, *, quick: bool) -> Tally:
    """Wrong JSON types for every parameter, the comment and the confirmations: 422."""
    tally = Tally("wrong types")
    before = target.state()
    with target.client(headers=target.auth) as client:
        fields = client.get("/risk").json()["fields"]
        cases: list[tuple[str, bytes]] = []
        for item in fields:
            kind = "nullable" if item["name"] == "stake_amount" else item["type"]
            for value in WRONG_BY_TYPE[kind]:
                cases.append(("PUT /risk", json.dumps({"changes": {item["name"]: value}}).encode()))
            for raw in (b"NaN", b"Infinity", b"1e999"):
                if kind in {"number", "nullable"}:
                    body = b'{"changes": {"' + item["name"].encode() + b'": ' + raw + b"}}"
                    cases.append(("PUT /risk", body))
        for comment in (5, None, ["why"], {"why": 1}, True):
            body = {"changes": {"max_open_positions": 2}, "comment": comment}
            cases.append(("PUT /risk", json.dumps(body).encode()))
        for extra in ({"changes": {}}, {"changes": {"no_such": 1}}, {"max_open_positions": 2}):
            cases.append(("PUT /risk", json.dumps(extra).encode()))
        for path in ("/control/flatten", "/control/clear-breaker"):
            for confirm in (1, 1.0, "true", "yes", None, [True], False):
                cases.append((f"POST {path}", json.dumps({"confirm": confirm}).encode()))
        if quick:
            cases = rng.sample(cases, min(len(cases), 40))
        for endpoint, body in cases:
            method, path = endpoint.split(" ")
            response = client.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
            target.bodies.append(response.text)
            tally.check(
                response.status_code == 422,
                f"{endpoint} {body[:80]!r} -> {response.status_code}",
            )
    after = target.state()
    tally.check(after == before, f"state changed by invalid values: {before} -> {after}")
    return tally


# ---- host, secrets ----------------------------------------------------------------------------


def probe_hosts(target: Target, rng: random.Random, *, quick: bool) -> Tally:
    """Foreign Host names (DNS rebinding) get 400 on every kind of route."""
    tally = Tally("foreign Host")
    paths = ["/health", "/login", "/metrics", "/", "/risk"]
    hosts = rng.sample(FOREIGN_HOSTS, 2) if quick else FOREIGN_HOSTS
    with target.client(headers=target.auth) as client:
        for host in hosts:
            for path in paths:
                response = client.get(path, headers={"Host": host})
                tally.check(
                    response.status_code == 400, f"Host {host} {path} -> {response.status_code}"
                )
    return tally


def probe_secrets(target: Target) -> Tally:
    """No token (right or wrong) in any response body seen, nor in the log."""
    tally = Tally("secrets in responses and logs")
    secrets = {target.token, *target.sent_tokens}
    for body in target.bodies:
        tally.check(not any(s in body for s in secrets), "a token in a response body")
    log_text = "".join(
        p.read_text(errors="replace") for p in (target.data_dir.parents[1]).rglob("*.log")
    )
    tally.check(bool(log_text), "no log written")
    for secret in secrets:
        tally.check(secret not in log_text, "a token in the log")
    return tally


# ---- schemathesis -----------------------------------------------------------------------------


def probe_schemathesis(target: Target, seed: int, *, quick: bool, workdir: Path) -> Tally:
    """``schemathesis run --checks all`` on the conformance server; cases tried, failures."""
    tally = Tally("schemathesis --checks all")
    command = [
        sys.executable,
        "-c",
        "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        "run",
        f"{target.url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {target.token}",
        "--max-examples",
        "3" if quick else "100",
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--no-color",
        "--generation-database",
        "none",
        "--request-timeout",
        "15",
    ]
    # in the throwaway folder: schemathesis keeps a .schemathesis/ cache in its working dir
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=workdir)
    output = done.stdout + done.stderr
    generated = re.search(r"(\d+) generated", output)
    unique = re.search(r"(\d+) unique failures?", output)
    tally.tried = int(generated.group(1)) if generated else 0
    if done.returncode != 0 or not generated:
        count = int(unique.group(1)) if unique else 1
        tail = output[-3000:]
        tally.failures = [f"schemathesis exit {done.returncode}:\n{tail}"] * count
    return tally


# ---- main -------------------------------------------------------------------------------------


def run_probe(seed: int, *, quick: bool, out: Callable[[str], None] = print) -> list[Tally]:
    """Start the servers, run every section, print one line per section and the total."""
    rng = random.Random(seed)
    token = f"probe-token-{rng.getrandbits(160):040x}"
    tallies: list[Tally] = []
    with tempfile.TemporaryDirectory(prefix="kmg-probe-") as tmp:
        servers = start_servers(Path(tmp), token)
        try:
            target = servers.target
            operations = _operations(target)
            tallies.append(
                probe_schemathesis(servers.conformance, seed, quick=quick, workdir=Path(tmp))
            )
            tallies.append(probe_credentials(target, rng, quick=quick, operations=operations))
            tallies.append(probe_bodies(target, rng, quick=quick))
            tallies.append(probe_types(target, rng, quick=quick))
            tallies.append(probe_hosts(target, rng, quick=quick))
            tallies.append(probe_secrets(target))
        finally:
            servers.stop()
            logger.remove()
    for tally in tallies:
        out(f"{tally.name}: {tally.tried} tried, {tally.failed} failed")
        for failure in tally.failures[:10]:
            out(f"  FAILED {failure}")
    tried = sum(t.tried for t in tallies)
    failed = sum(t.failed for t in tallies)
    out(f"{tried} tried, {failed} failed")
    return tallies


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--seed`` (default 7) and ``--quick``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--quick", action="store_true", help="the short version (< 60 s)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    tallies = run_probe(args.seed, quick=args.quick)
    print(
        f"seed {args.seed}, {'quick' if args.quick else 'full'}, {time.monotonic() - started:.0f} s"
    )
    return 1 if any(t.failed for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
