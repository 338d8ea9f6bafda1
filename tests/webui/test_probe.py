"""Issue 20's "done when": the short, seeded adversarial probe runs in the suite and finds
nothing (bad credentials × every endpoint, oversized bodies, wrong types, foreign Host names,
secrets, schemathesis ``--checks all``); and the probe does see a broken server.

The full version: ``python scripts/probe_web.py`` (its figure is in the README).
"""

from __future__ import annotations

import importlib.util
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kmg_autotrader.config import Settings
from kmg_autotrader.webui import BackgroundServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "probe_web.py"


def _load_probe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("probe_web", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["probe_web"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


probe = _load_probe()


def test_the_short_seeded_probe_finds_nothing() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    took = time.monotonic() - started
    lines = done.stdout.strip().splitlines()
    total = next(line for line in reversed(lines) if re.fullmatch(r"\d+ tried, \d+ failed", line))
    tried, failed = (int(n) for n in re.findall(r"\d+", total))
    assert done.returncode == 0 and failed == 0, done.stdout + done.stderr[-3000:]
    sections = {line.split(":")[0] for line in lines if " tried, " in line and ":" in line}
    assert sections == {
        "schemathesis --checks all",
        "credentials × endpoints",
        "oversized bodies",
        "wrong types",
        "foreign Host",
        "secrets in responses and logs",
    }
    for line in lines:
        if ": " in line and " tried, " in line:
            assert int(line.split(": ")[1].split(" ")[0]) > 0, line  # every section ran
    assert tried > 500
    assert took < 60


# ---- the probe can fail ----------------------------------------------------------------------


def _naive_app() -> FastAPI:
    """A dashboard-shaped server without any of the defences: everyone gets in, any value is
    taken, bodies are read whole, any Host is answered."""
    app = FastAPI()
    answers: dict[str, Any] = {
        "/openapi.json": {"paths": {"/metrics": {"get": {}}, "/control/pause": {"post": {}}}},
        "/risk": {"version": 0, "fields": [{"name": "max_open_positions", "type": "integer"}]},
        "/control": {"paused": False},
        "/logs": {"items": []},
        "/health": {"status": "ok", "feed": "details for anyone"},
    }

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT"], include_in_schema=False)
    async def anything(request: Request, path: str) -> JSONResponse:
        await request.body()
        return JSONResponse(answers.get(f"/{path}", {"ok": True}))

    return app


@pytest.fixture(scope="module")
def naive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    settings = Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("naive"))  # type: ignore[call-arg]
    server = BackgroundServer(_naive_app(), settings, port=0).start()
    yield probe.Target(server.url, "the-token-0123456789abcdef", Path(settings.data_dir))
    server.stop()


def test_the_probe_fails_a_server_without_defences(
    naive: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(1)
    # header-only variants: the naive server has no login form to make session cookies with
    variants = {
        "no credentials": {},
        "wrong bearer": {"headers": {"Authorization": "Bearer wrong"}},
    }
    monkeypatch.setattr(probe, "credential_variants", lambda target, rng: variants)
    monkeypatch.setattr(probe, "PAGES", [])
    operations = probe._operations(naive)
    credentials = probe.probe_credentials(naive, rng, quick=False, operations=operations)
    assert credentials.failed >= 4 + 2  # 2 variants x 3 operations, /health details, no 429
    types = probe.probe_types(naive, rng, quick=False)
    assert types.failed >= len(probe.WRONG_BY_TYPE["integer"])
    hosts = probe.probe_hosts(naive, rng, quick=True)
    assert hosts.failed == hosts.tried > 0
    answer, took = probe._huge_request(naive, "PUT", "/risk", auth=False)
    assert not answer.startswith("HTTP/1.1 413") and took >= 2.5  # it waited for 50 MB
