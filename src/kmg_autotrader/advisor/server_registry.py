"""Pid files for the local model servers the bot starts, and the start-up check that stops a
server left running by a bot that died without stopping it (SIGKILL, power loss, OOM killer).

One JSON file per server under the state folder (``DATA_DIR/run``): the server's pid, the pid of
the bot that started it, and its port. A file whose bot is gone names a stale server; it is
stopped only if that pid still runs our server module (pids get reused).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

from loguru import logger

PID_FILE_GLOB = "llm-server-*.json"


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to stop
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal check is all there is
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def runs_module(pid: int, module: str) -> bool:
    """True when ``pid``'s command line names ``module`` (False when it cannot be read: a
    process we cannot identify is never stopped)."""
    try:
        return module.encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


def pid_file(state_dir: Path, port: int) -> Path:
    """The pid file of the server on ``port``."""
    return state_dir / f"llm-server-{port}.json"


def record_server(state_dir: Path, *, pid: int, port: int) -> Path:
    """Write the pid file of a server this process just started."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = pid_file(state_dir, port)
    path.write_text(json.dumps({"pid": pid, "parent": os.getpid(), "port": port}))
    return path


def _terminate(pid: int, timeout_s: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop_stale_servers(state_dir: Path, module: str, *, timeout_s: float = 5.0) -> list[int]:
    """Stop every server recorded under ``state_dir`` whose bot is gone and that still runs
    ``module``; remove the pid files of dead bots. Returns the pids stopped."""
    stopped: list[int] = []
    if not state_dir.is_dir():
        return stopped
    for path in sorted(state_dir.glob(PID_FILE_GLOB)):
        try:
            record = json.loads(path.read_text())
            pid, parent = int(record["pid"]), int(record["parent"])
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("unreadable LLM server pid file {}: removed", path)
            path.unlink(missing_ok=True)
            continue
        if parent == os.getpid() or pid_alive(parent):
            continue  # a server of ours or of another bot that is running
        if pid_alive(pid) and runs_module(pid, module):
            logger.warning("stopping LLM server {} left running by a dead bot ({})", pid, parent)
            _terminate(pid, timeout_s)
            stopped.append(pid)
        path.unlink(missing_ok=True)
    return stopped
