"""The dashboard under read load beside the running bot (issue 18 item 20).

Runs the real bot (``run_demo``: the packaged BTC/USDT candles replayed at full speed through
the live loop, PAPER, advisor off, SQLite) with the dashboard started the way ``kmg demo`` /
``kmg run`` start it, in a child process. The candles are replayed twice from scratch: once
with the dashboard idle, once while a load generator (another process: a small keep-alive
HTTP/1.1 client, so it costs the machine little) asks ``/metrics``, ``/equity``, ``/signals``
and ``/trades`` in turn at a fixed rate (open loop: latency counts from when each request was
due, so a stall is not hidden by requests that were never sent).

Prints the API latency (p50 / p99 / max), the bot's candle rate with and without the load (the
slowdown), and the bot loop's lag (how late a 10 ms timer on the bot's event loop fires).

Run: ``.venv/bin/python benchmarks/dashboard_load.py`` (``--candles 3000 --rate 100``).
``--src DIR`` runs another checkout's ``src`` (e.g. the code before a change, exported with
``git archive``); the figures of each run are quoted in the README's benchmarks section.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOKEN = "bench-token-0123456789abcdefghijkl"
ENDPOINTS = ("/metrics", "/equity", "/signals", "/trades")
ROOT = Path(__file__).resolve().parents[1]
WARM_UP_S = 1.0  # the load runs this long before the candles start; not counted


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---- the bot (child process) ----------------------------------------------------------------


async def _bot(data_dir: Path, port: int, candles: int) -> dict[str, Any]:
    """Replay ``candles`` through the bot with the dashboard on; wait for GO on stdin first."""
    from loguru import logger

    from kmg_autotrader.autopilot.runner import run_demo
    from kmg_autotrader.autopilot.web import start_web
    from kmg_autotrader.config import Settings

    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data_dir,
        api_token=TOKEN,
        web_port=port,
        advisor_mode="off",
    )
    loop = asyncio.get_running_loop()
    gc_pauses: list[float] = []
    gc_started: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[:] = [time.perf_counter()]
        elif gc_started and "go" in marks:
            gc_pauses.append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(on_gc)
    marks: dict[str, float] = {}
    lags: list[float] = []
    feeds: list[Any] = []

    async def watch() -> None:
        """The bot loop's lag; the time the replay finished."""
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            lags.append(now - t0 - 0.01)
            if feeds and feeds[0].steps_done >= feeds[0].total_steps and "end" not in marks:
                marks["end"] = now
                marks["end_cpu"] = time.process_time()
                marks["steps"] = feeds[0].steps_done
                print("END", flush=True)  # the load stops before the dashboard does

    async def web(*args: Any) -> Any:
        stop = await start_web(*args)
        print("READY", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)  # the load runs (or not)
        marks["go"] = time.perf_counter()
        marks["go_cpu"] = time.process_time()
        marks["go_steps"] = feeds[0].steps_done
        watcher.append(asyncio.create_task(watch()))

        async def stop_when_told() -> None:
            await loop.run_in_executor(None, sys.stdin.readline)  # after the load ended
            await stop()

        return stop_when_told

    def on_feed(feed: Any) -> Any:
        feeds.append(feed)
        return lambda: None

    watcher: list[asyncio.Task[None]] = []
    # start=0: the same candles as the figures recorded before the demo's default start moved
    summary = await run_demo(settings, speed=0, web=web, limit=candles, on_feed=on_feed, start=0)
    for task in watcher:
        task.cancel()
    steps = marks["steps"] - marks["go_steps"]
    seconds = marks["end"] - marks["go"]
    return {
        "steps": steps,
        "seconds": seconds,
        "rate": steps / seconds,
        "candles": summary.candles,
        "lag_p50_ms": _pct(lags, 0.5) * 1000,
        "lag_p99_ms": _pct(lags, 0.99) * 1000,
        "lag_max_ms": max(lags) * 1000,
        "gc_max_ms": max(gc_pauses, default=0.0) * 1000,
        "cpu_per_candle_ms": (marks["end_cpu"] - marks["go_cpu"]) / steps * 1000,
    }


# ---- the load (child process) -----------------------------------------------------------------


class _Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status


async def _connect(port: int) -> _Connection:
    return _Connection(*await asyncio.open_connection("127.0.0.1", port))


async def _load(port: int, rate: float) -> dict[str, Any]:
    """Ask the endpoints in turn at ``rate`` per second until stdin closes."""
    idle: list[_Connection] = []
    latencies: list[float] = []
    worst: list[tuple[float, float, str]] = []  # (latency, when after the start, path)
    statuses: dict[int, int] = {}
    requests = [
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\n\r\n"
        ).encode()
        for path in ENDPOINTS
    ]
    loop = asyncio.get_running_loop()
    done = loop.run_in_executor(None, sys.stdin.read)
    pending: set[asyncio.Task[None]] = set()

    async def one(request: bytes, due: float, path: str) -> None:
        reused = bool(idle)
        connection = idle.pop() if idle else await _connect(port)
        try:
            try:
                status = await connection.get(request)
            except (OSError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                # uvicorn closes a keep-alive connection idle for 5 s: ask on a new one
                connection = await _connect(port)
                status = await connection.get(request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            statuses[0] = statuses.get(0, 0) + 1
            return
        latency = time.perf_counter() - due
        if due - start >= WARM_UP_S:  # the first answers open connections and fill caches
            latencies.append(latency)
            worst.append((latency, due - start, path))
        statuses[status] = statuses.get(status, 0) + 1
        idle.append(connection)

    start = time.perf_counter()
    n = 0
    print("LOADING", flush=True)
    while not done.done():
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        i = n % len(requests)
        task = asyncio.create_task(one(requests[i], due, ENDPOINTS[i]))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
    elapsed = time.perf_counter() - start - WARM_UP_S
    await asyncio.gather(*pending, return_exceptions=True)
    return {
        "requests": len(latencies),
        "rate": len(latencies) / elapsed,
        "statuses": statuses,
        "p50_ms": _pct(latencies, 0.5) * 1000,
        "p99_ms": _pct(latencies, 0.99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "worst": [
            f"{path} at {when:.1f} s: {latency * 1000:.0f} ms"
            for latency, when, path in sorted(worst, reverse=True)[:5]
        ],
    }


# ---- the driver -----------------------------------------------------------------------------


def _child(args: list[str], src: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _expect(process: subprocess.Popen[str], word: str) -> None:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != word:
        raise RuntimeError(f"expected {word}, got {line!r} (exit {process.poll()})")


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdin is not None and process.stdout is not None
    if not process.stdin.closed:
        process.stdin.close()  # the load generator stops at this
    out = process.stdout.read()
    process.wait(timeout=60)
    return dict(json.loads(out.strip().splitlines()[-1]))


def run_once(src: Path, candles: int, rate: float | None) -> dict[str, Any]:
    """One replay of ``candles``; under load at ``rate`` requests/s when given."""
    with tempfile.TemporaryDirectory(prefix="kmg-dash-") as tmp:
        port = _free_port()
        bot = _child(["--bot", "--port", str(port), "--data", tmp, "--candles", str(candles)], src)
        load = None
        try:
            _expect(bot, "READY")
            if rate is not None:
                load = _child(["--load", "--port", str(port), "--rate", str(rate)], src)
                _expect(load, "LOADING")
                time.sleep(WARM_UP_S)  # the load is at its rate before the candles start
            assert bot.stdin is not None
            bot.stdin.write("GO\n")
            bot.stdin.flush()
            _expect(bot, "END")
            result = {"api": _result(load)} if load is not None else {}
            result["bot"] = _result(bot)  # closing its stdin stops the dashboard
            return result
        finally:
            for process in (bot, load):
                if process is not None and process.poll() is None:
                    process.kill()


def main() -> None:
    """Parse the options; run a role (child) or the whole comparison (driver)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=3000, help="candles per replay")
    parser.add_argument("--rate", type=float, default=100.0, help="API requests per second")
    parser.add_argument("--repeat", type=int, default=1, help="idle/loaded pairs, interleaved")
    parser.add_argument("--verbose", action="store_true", help="name the slowest answers")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the code to run")
    parser.add_argument("--bot", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bot:
        print(json.dumps(asyncio.run(_bot(args.data, args.port, args.candles))))
        return
    if args.load:
        print(json.dumps(asyncio.run(_load(args.port, args.rate))))
        return
    print(
        f"code: {args.src}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; "
        f"{args.candles} candles per replay; {args.rate:g} requests/s on {', '.join(ENDPOINTS)}"
    )
    slowdowns, cpu_shares, p99s = [], [], []
    for i in range(args.repeat):
        if i % 2 == 0:  # alternate which replay runs first (the machine's load drifts)
            idle = run_once(args.src, args.candles, None)["bot"]
            loaded = run_once(args.src, args.candles, args.rate)
        else:
            loaded = run_once(args.src, args.candles, args.rate)
            idle = run_once(args.src, args.candles, None)["bot"]
        bot, api = loaded["bot"], loaded["api"]
        slowdowns.append(100 * (1 - bot["rate"] / idle["rate"]))
        cpu_shares.append(100 * (bot["cpu_per_candle_ms"] / idle["cpu_per_candle_ms"] - 1))
        p99s.append(api["p99_ms"])
        print(
            f"[{i + 1}] idle: {idle['rate']:.0f} candles/s (loop lag p99 "
            f"{idle['lag_p99_ms']:.1f} ms, max {idle['lag_max_ms']:.0f} ms) | under load: "
            f"{bot['rate']:.0f} candles/s (loop lag p99 {bot['lag_p99_ms']:.1f} ms, max "
            f"{bot['lag_max_ms']:.0f} ms), slowdown {100 * (1 - bot['rate'] / idle['rate']):.1f} %"
            f" | API {api['rate']:.0f} req/s answered, p50 {api['p50_ms']:.1f} ms, p99 "
            f"{api['p99_ms']:.1f} ms, max {api['max_ms']:.0f} ms, statuses {api['statuses']}"
        )
        if args.verbose:
            print("    slowest answers:", "; ".join(api["worst"]))
            print(
                f"    the bot's process CPU per candle: idle {idle['cpu_per_candle_ms']:.2f} ms, "
                f"under load {bot['cpu_per_candle_ms']:.2f} ms (the dashboard's share)"
            )
            print(
                f"    longest garbage collection in the bot's process: idle "
                f"{idle['gc_max_ms']:.0f} ms, under load {bot['gc_max_ms']:.0f} ms"
            )
    if args.repeat > 1:
        print(
            f"median of {args.repeat} pairs: slowdown {statistics.median(slowdowns):.1f} % "
            f"(each: {', '.join(f'{x:.0f}' for x in slowdowns)}); the process's CPU per candle "
            f"+{statistics.median(cpu_shares):.1f} % under load; API p99 median "
            f"{statistics.median(p99s):.1f} ms, worst {max(p99s):.1f} ms (load average "
            f"{os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main()
