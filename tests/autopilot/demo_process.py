"""A `kmg demo` subprocess for the tests: its stdout read line by line as it comes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A loopback port nobody listens on (at this instant)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoProcess:
    """``python -m kmg_autotrader demo *args`` with DATA_DIR ``data`` (and the dashboard on
    ``web_port`` when given, through WEB_PORT as a user would set it); stdout collected."""

    def __init__(self, data: Path, *args: str, web_port: int | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("API_TOKEN", "WEB_PORT")}
        env.update({"DATA_DIR": str(data), "COLUMNS": "400", "WEB_HOST": "127.0.0.1"})
        if web_port is not None:
            env["WEB_PORT"] = str(web_port)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kmg_autotrader", "demo", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[tuple[float, str]] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, None), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, stream: Any, into: list[tuple[float, str]] | None) -> None:
        for line in stream:
            if into is not None:
                into.append((time.monotonic() - self.started, line.rstrip("\n")))
            else:
                self.err.append(line)

    @property
    def out(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def finish(self, timeout: float = 60) -> int:
        """Wait for the exit (and the rest of its output); its return code."""
        code = self.proc.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def get_json(port: int, path: str, token: str) -> Any:
    """GET the dashboard's API with the bearer token; None while it does not answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
