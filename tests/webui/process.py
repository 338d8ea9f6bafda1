"""``kmg web`` as a real process on a free loopback port (restarts, file modes, the probe)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[2] / "src"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def kmg_web(
    data_dir: Path, port: int, env: dict[str, str] | None = None, timeout: float = 20.0
) -> Iterator[str]:
    """Run ``kmg web`` over ``data_dir`` until the block ends (SIGINT, as Ctrl-C); yield its URL."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("API_TOKEN", "WEB_", "POSTGRES_URL", "TRADING_MODE"))
    }
    environment.update(
        {"PYTHONPATH": str(SRC), "DATA_DIR": str(data_dir), "LOG_LEVEL": "INFO", **(env or {})}
    )
    output_file = data_dir.parent / f"kmg-web-{port}.out"  # a file: a full pipe would block it
    output = output_file.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "kmg_autotrader.cli", "web", "--port", str(port)],
        env=environment,
        cwd=data_dir.parent,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                said = output_file.read_text(errors="replace")
                raise RuntimeError(f"kmg web exited {process.returncode}: {said}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("kmg web did not answer /health in time")
            time.sleep(0.1)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        output.close()
