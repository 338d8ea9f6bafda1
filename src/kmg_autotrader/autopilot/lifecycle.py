"""Process life cycle of ``kmg run`` / ``kmg demo``: signals, a bounded teardown, no hang.

* The first SIGINT/SIGTERM asks for a clean stop (the runner's ``stop`` event); a second one
  forces the exit at once (exit code 128 + signal number).
* :func:`run_to_end` is ``asyncio.run`` with every step of the teardown bounded: tasks left
  running get :data:`TEARDOWN_S` seconds to end after cancellation, and worker threads still
  busy (an alert endpoint that never answers, a blocked file write) are not waited for —
  ``asyncio.run`` would wait for them forever, its loop idle in epoll and deaf to signals.
* :func:`leave` ends the process without joining such threads once the command is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from loguru import logger

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
TEARDOWN_S = 5.0  # tasks left after the run, then busy worker threads, get this long
# The dashboard's uvicorn re-raises the signal it caught once it has shut down, so a signal
# comes twice when the dashboard runs: one repeat of the first signal within this many seconds
# is that echo, not a second request (another signal, or any third one, still forces the exit).
ECHO_S = 5.0
_state: dict[str, Any] = {"stuck": [], "signals": 0, "first": None, "echoed": False}


def _second_request(signum: int) -> bool:
    """Count a stop signal; True when it is a second request (the exit must be forced)."""
    now = time.monotonic()
    first = _state["first"]
    if first is None:
        _state["first"] = (signum, now)
        _state["signals"] = 1
        return False
    if signum == first[0] and now - first[1] < ECHO_S and not _state["echoed"]:
        _state["echoed"] = True
        logger.debug("{} again: the dashboard's echo of the first", signal.Signals(signum).name)
        return False
    _state["signals"] += 1
    return True


def force_exit(code: int, why: str) -> None:
    """Exit now, without joining threads or running cleanup (the last resort)."""
    with contextlib.suppress(Exception):
        logger.warning("exiting now: {}", why)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def install_stop_signals(stop: asyncio.Event, on_first: Callable[[], None] | None = None) -> None:
    """SIGINT/SIGTERM: the first sets ``stop`` (a clean stop), the next forces the exit."""
    loop = asyncio.get_running_loop()

    def handle(signum: int) -> None:
        if _second_request(signum):
            force_exit(128 + signum, f"second stop signal ({signal.Signals(signum).name})")
        if _state["echoed"] and stop.is_set():
            return
        logger.info(
            "{}: stopping cleanly (send it again to exit at once)", signal.Signals(signum).name
        )
        stop.set()
        if on_first is not None:
            on_first()

    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handle, sig)


def _busy_threads() -> list[threading.Thread]:
    """Non-daemon threads started during the run (Python joins those at exit) still alive."""
    before = _state.get("before", set())
    main = threading.main_thread()
    return [
        t
        for t in threading.enumerate()
        if t is not main and not t.daemon and t.is_alive() and t.ident not in before
    ]


async def _teardown(cut: threading.Event, budget_s: float) -> None:
    """Cancel the tasks left over and wait for them up to ``budget_s`` (or until ``cut``)."""
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in left:
        task.cancel()
    deadline = time.monotonic() + budget_s
    pending = set(left)
    while pending and not cut.is_set() and time.monotonic() < deadline:
        _, pending = await asyncio.wait(pending, timeout=0.1)
    if pending:
        logger.warning(
            "stopping: {} task(s) still running ({}); not waiting for them",
            len(pending),
            ", ".join(sorted(t.get_name() for t in pending)[:5]),
        )
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.get_running_loop().shutdown_asyncgens(), timeout=1.0)


def run_to_end(main: Coroutine[Any, Any, T], *, teardown_s: float = TEARDOWN_S) -> T:
    """Run ``main`` to its end like :func:`asyncio.run`, with a bounded teardown.

    A stop signal during the teardown cuts it short (the run itself is over); a second one
    (counting one during the run) forces the exit. Worker threads still busy after the
    teardown are left behind (see :func:`leave`)."""
    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(thread_name_prefix="kmg-worker")
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    _state.update(signals=0, first=None, echoed=False)
    _state["before"] = {t.ident for t in threading.enumerate()}
    try:
        return loop.run_until_complete(main)
    finally:
        with contextlib.suppress(Exception):  # a signal that came as the run ended: handle it
            loop.run_until_complete(asyncio.sleep(0.05))
        cut = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            if _second_request(signum):
                force_exit(128 + signum, "second stop signal while shutting down")
            cut.set()
            with contextlib.suppress(Exception):
                loop.call_soon_threadsafe(lambda: None)  # wake the loop

        # from here on plain handlers: the loop's own only run while the loop runs, and the
        # threads are joined below with the loop stopped
        previous = {}
        for sig in STOP_SIGNALS:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
            with contextlib.suppress(Exception):
                previous[sig] = signal.signal(sig, on_signal)
        if _state["signals"]:  # a stop was asked for: do not wait for what is left over
            cut.set()
        deadline = time.monotonic() + teardown_s
        try:
            loop.run_until_complete(_teardown(cut, teardown_s))
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            for thread in _busy_threads():
                while thread.is_alive() and not cut.is_set() and time.monotonic() < deadline:
                    thread.join(0.1)
            _state["stuck"] = [t.name for t in _busy_threads()]
            if _state["stuck"]:
                logger.warning(
                    "stopping: {} worker thread(s) still busy ({}); the process will not wait "
                    "for them",
                    len(_state["stuck"]),
                    ", ".join(_state["stuck"][:5]),
                )
            else:
                for sig, handler in previous.items():
                    with contextlib.suppress(Exception):
                        signal.signal(sig, handler)
            asyncio.set_event_loop(None)
            loop.close()


def leave(code: int = 0) -> None:
    """End the process now with ``code`` if :func:`run_to_end` left busy threads behind
    (Python would join them at exit, for ever); otherwise return and exit normally."""
    if _state["stuck"] or _busy_threads():
        force_exit(code, "worker threads still busy after the shutdown")
