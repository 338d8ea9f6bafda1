"""The local llama.cpp server never outlives the bot (issue 18 item 18): a bot killed with
SIGKILL takes its server with it within seconds, and a start stops a server that a dead bot left
running (pid file under DATA_DIR/run)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kmg_autotrader.advisor.local_server import (
    SERVER_MODULE,
    LocalLlmError,
    LocalLlmServer,
    missing_requirements,
)
from kmg_autotrader.advisor.server_registry import pid_alive, pid_file, stop_stale_servers

ROOT = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 5.0
LOCAL_MISSING = missing_requirements()

# A "bot": starts the real server with a state folder, prints its pid, then waits to be killed.
BOT = """
import sys, time
from pathlib import Path
from kmg_autotrader.advisor.local_server import LocalLlmServer
server = LocalLlmServer(state_dir=Path(sys.argv[1]), n_threads=1, startup_timeout_s=150)
server.start()
print(server._process.pid, server.port, flush=True)
time.sleep(600)
"""


def child_env() -> dict[str, str]:
    """The environment with this worktree's sources first (absolute paths)."""
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}


def wait_gone(pid: int, timeout_s: float) -> float | None:
    """Seconds until ``pid`` is gone, or None when it outlives ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if not pid_alive(pid):
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def kill_if_alive(pid: int) -> None:
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(LOCAL_MISSING is not None, reason=f"local-llm extra: {LOCAL_MISSING}")
@pytest.mark.timeout(240)
def test_the_server_dies_with_a_sigkilled_bot(tmp_path: Path) -> None:
    state = tmp_path / "run"
    bot = subprocess.Popen(
        [sys.executable, "-c", BOT, str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=child_env(),
        cwd=tmp_path,
    )
    server_pid = 0
    try:
        assert bot.stdout is not None
        ready, _, _ = select.select([bot.stdout], [], [], 200)
        assert ready, "the bot did not start its server"
        server_pid, port = (int(v) for v in bot.stdout.readline().split())
        record = json.loads(pid_file(state, port).read_text())
        assert record == {"pid": server_pid, "parent": bot.pid, "port": port}
        assert pid_alive(server_pid)

        bot.send_signal(signal.SIGKILL)  # no atexit, no aclose: only the server can notice
        bot.wait(10)
        took = wait_gone(server_pid, GONE_WITHIN_S)
        assert took is not None, f"server {server_pid} still runs {GONE_WITHIN_S}s after SIGKILL"
        print(f"\nserver gone {took:.2f}s after its bot was SIGKILLed")
        # the next start clears the dead bot's pid file (nothing is left to stop)
        assert stop_stale_servers(state, SERVER_MODULE) == []
        assert not pid_file(state, port).exists()
    finally:
        kill_if_alive(bot.pid)
        bot.wait(10)
        if server_pid:
            kill_if_alive(server_pid)


def spawn(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", *argv], start_new_session=True
    )


def dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(10)
    return gone.pid


def write_record(state: Path, *, pid: int, parent: int, port: int) -> Path:
    state.mkdir(parents=True, exist_ok=True)
    path = pid_file(state, port)
    path.write_text(json.dumps({"pid": pid, "parent": parent, "port": port}))
    return path


def test_a_start_stops_the_server_a_dead_bot_left_behind(tmp_path: Path) -> None:
    state = tmp_path / "run"
    orphan = spawn(SERVER_MODULE)  # runs our server module; its bot is dead
    stranger = spawn("something-else")  # a reused pid: not our server, never stopped
    sibling = spawn(SERVER_MODULE)  # the server of another bot that is still running
    live_bot = spawn("a-bot")
    try:
        stale = write_record(state, pid=orphan.pid, parent=dead_pid(), port=1)
        reused = write_record(state, pid=stranger.pid, parent=dead_pid(), port=2)
        other = write_record(state, pid=sibling.pid, parent=live_bot.pid, port=3)
        (state / "llm-server-4.json").write_text("{not json")

        # the model is missing, so nothing starts, but the stale check runs first
        with pytest.raises(LocalLlmError):
            LocalLlmServer(tmp_path / "none.gguf", state_dir=state).start()

        assert orphan.wait(GONE_WITHIN_S) == -signal.SIGTERM
        assert stranger.poll() is None and sibling.poll() is None
        assert not stale.exists() and not reused.exists() and other.exists()
        assert not (state / "llm-server-4.json").exists()
        assert stop_stale_servers(state, SERVER_MODULE) == []  # idempotent
    finally:
        for process in (orphan, stranger, sibling, live_bot):
            process.kill()
            process.wait(10)
