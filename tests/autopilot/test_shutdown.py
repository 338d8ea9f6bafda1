"""Issue 20.5: shutdown never hangs. A SIGTERM ends `kmg demo` / `kmg run` within 5 s in every
phase — an LLM call in flight, an order in flight, the final summary — a second signal ends it
at once, and every shutdown step is bounded.

Regression: a demo that had finished ignored SIGTERM and SIGINT for over 7 minutes, its main
thread idle in epoll: ``asyncio.run`` waited for ever for a worker thread still busy (an alert
endpoint that never answers keeps Apprise's blocking call alive past its socket timeouts) while
the bot's signal handlers only set a stop event nobody waited for any more. And a SIGTERM
during an advisor call waited for the LLM's answer or its timeout (up to LLM_TIMEOUT_SECONDS,
with retries).

Everything as a user runs it: `kmg demo` / `kmg run --live` as processes, the real openai SDK
against a fake LLM on 127.0.0.1, Apprise against a local endpoint, `kmg venue` as the exchange.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from kmg_autotrader.domain import Mode
from tests.e2e.harness import HarnessError, Rehearsal, VenueConfig, _Process, child_env, tail
from tests.fakes.fake_llm_server import FakeLlmServer, slow

HOLD = {
    "reasoning": "Momentum is fading into resistance and volume is thin; better to wait here.",
    "risks": ["false breakout"],
    "action": "hold",
    "confidence": 0.8,
}


class DemoProcess(_Process):
    """``kmg demo ARGS`` with the given settings (environment variables)."""

    name = "kmg demo"

    def __init__(self, workdir: Path, settings: Mapping[str, str], args: list[str]) -> None:
        super().__init__(workdir, "demo")
        self._spawn(["demo", *args], child_env(settings))


def _wait(condition: Callable[[], object], proc: _Process, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if not proc.running:
            raise HarnessError(
                f"{proc.name} exited {proc.returncode} before {what}\n{proc.log_tail()}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise HarnessError(f"{what}: not within {timeout:g} s\n{proc.log_tail()}")
        time.sleep(0.1)


def _advisor_settings(tmp_path: Path, llm: FakeLlmServer) -> dict[str, str]:
    return {
        "DATA_DIR": str(tmp_path / "data"),
        "OPENAI_BASE_URL": llm.base_url,
        "OPENAI_API_KEY": "sk-test-not-a-real-key-000",
        "ADVISOR_MODE": "advisory",
        "LLM_TIMEOUT_SECONDS": "600",
        "GPT_CALL_LIMIT_PER_HOUR": "100",
        "ADVISOR_SYMBOL_COOLDOWN_MINUTES": "0",
        "LOG_LEVEL": "DEBUG",
    }


def test_sigterm_while_an_llm_call_is_in_flight_exits_0_within_5_s(tmp_path: Path) -> None:
    with FakeLlmServer(default=slow(600, HOLD)) as llm:  # it never answers in time
        proc = DemoProcess(tmp_path, _advisor_settings(tmp_path, llm), ["--speed", "0", "--no-web"])
        _wait(lambda: llm.requests, proc, 120, "an advisor call in flight")
        time.sleep(0.5)
        code = proc.stop(timeout=5)
    assert code == 0, proc.log_tail()
    # the review was cancelled and its candidate dropped, not traded after the stop
    assert "STOPPING 1" in proc.stdout_path.read_text(), proc.log_tail()


class DripServer:
    """An HTTP endpoint that never finishes its answer: one header line every 0.5 s, so no
    socket timeout ever fires (an alert webhook behind a broken proxy behaves like this)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not self._stop.wait(0.5):
                conn.sendall(b"X-Drip: 1\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture
def drip() -> Iterator[DripServer]:
    server = DripServer()
    try:
        yield server
    finally:
        server.close()


def test_sigterm_during_the_final_summary_exits_0_within_5_s(
    tmp_path: Path, drip: DripServer
) -> None:
    settings = {
        "DATA_DIR": str(tmp_path / "data"),
        "ADVISOR_MODE": "off",
        "ALERT_URLS": f"json://127.0.0.1:{drip.port}/",
        "LOG_LEVEL": "DEBUG",
    }
    proc = DemoProcess(tmp_path, settings, ["--speed", "0", "--no-web", "--limit", "400"])
    _wait(
        lambda: "stopping: services stopped" in tail(proc.stderr_path, 400) or not proc.running,
        proc,
        120,
        "the end of the replay",
    )
    assert drip.connections >= 1  # an alert is stuck in delivery
    code = proc.stop(timeout=5)
    assert code == 0, proc.log_tail()
    assert "candles processed" in proc.stdout_path.read_text()  # the summary was printed


def test_a_second_signal_exits_at_once(tmp_path: Path, drip: DripServer) -> None:
    # an alert stuck in delivery holds the first stop for seconds; the second signal must not wait
    settings = {
        "DATA_DIR": str(tmp_path / "data"),
        "ADVISOR_MODE": "off",
        "ALERT_URLS": f"json://127.0.0.1:{drip.port}/",
        "LOG_LEVEL": "DEBUG",
    }
    proc = DemoProcess(tmp_path, settings, ["--speed", "0", "--no-web", "--limit", "400"])
    # the replay ended and the services' stop waits on the stuck alert (up to its 8 s bound)
    _wait(
        lambda: "stopping: fills and equity recorded" in tail(proc.stderr_path, 400),
        proc,
        120,
        "the end of the replay",
    )
    assert drip.connections >= 1 and proc.proc is not None
    assert "stopping: services stopped" not in tail(proc.stderr_path, 400)
    proc.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    code = proc.stop(timeout=1.5, sig=signal.SIGINT)
    assert code == 128 + signal.SIGINT, proc.log_tail()
    assert "second stop signal" in tail(proc.stderr_path, 50)


async def test_sigterm_while_an_order_is_in_flight_exits_0_within_5_s(tmp_path: Path) -> None:
    config = VenueConfig(exchange="binance", speed=600.0, warmup=1_100, rows=(4_691, 4_729))
    async with Rehearsal(tmp_path, config) as r:
        r.set_risk()
        # the first order IS placed at the venue; its answer comes 60 s late
        await r.client.add_faults(
            {"kind": "timeout_after_accept", "endpoint": "create_order", "delay": 60, "after": 0}
        )
        r.start_bot(live=True)
        await r.wait_db()

        async def placed_unanswered() -> bool:
            trades = (await r.books())["trades"]
            return len(trades) >= 1 and len(trades) > len(r.db.fills(Mode.LIVE))

        await r.wait_for(placed_unanswered, "an order placed, its answer late", 90)
        await asyncio.sleep(0.5)
        assert await r.stop_bot() < 5  # exit 0 (stop_bot raises otherwise)
