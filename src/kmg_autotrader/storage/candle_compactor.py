"""One background thread per process that folds candle segments into main files.

A compaction rewrites a whole series (tens of ms for a year of 5m candles), so appends never
run one themselves: they schedule it here and return. A job waits ``delay`` seconds first so it
lands between closed candles rather than next to the candle that triggered it; jobs are keyed by
series, so scheduling one that is already waiting is free. At interpreter exit the waiting jobs
run at once, for at most :data:`EXIT_DRAIN_S` (a stopping bot must exit promptly); whatever is
not done by then, or in a process killed outright, stays as segments, which every reader merges
and a later compaction folds in, so nothing is lost.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable, Hashable

from loguru import logger

EXIT_DRAIN_S = 2.0


class Compactor:
    """A daemon worker running keyed jobs after a delay, one at a time."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jobs: dict[Hashable, tuple[float, Callable[[], object]]] = {}
        self._running: Hashable | None = None
        self._hurry = False
        self._thread: threading.Thread | None = None

    def schedule(self, key: Hashable, job: Callable[[], object], delay: float) -> None:
        """Run ``job`` in ``delay`` seconds unless a job for ``key`` is already waiting."""
        with self._cond:
            if key in self._jobs:
                return
            self._jobs[key] = (time.monotonic() + delay, job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="candle-compactor", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Run every waiting job now and wait for them; True when all finished in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
            try:
                while self._jobs or self._running is not None:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._thread is None:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                self._hurry = False

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._jobs:
                        key, (due, job) = min(self._jobs.items(), key=lambda kv: kv[1][0])
                        wait = due - time.monotonic()
                        if wait <= 0 or self._hurry:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                del self._jobs[key]
                self._running = key
            try:
                job()
            except Exception:  # a failed compaction loses nothing: the segments stay
                logger.exception("candle compaction of {} failed", key)
            finally:
                with self._cond:
                    self._running = None
                    self._cond.notify_all()


_compactor: Compactor | None = None
_guard = threading.Lock()


def compactor() -> Compactor:
    """This process's compactor (created on first use)."""
    global _compactor
    with _guard:
        if _compactor is None:
            _compactor = Compactor()
        return _compactor


def drain(timeout: float = EXIT_DRAIN_S) -> bool:
    """Run this process's waiting compactions now; True when they all finished in time."""
    return True if _compactor is None else _compactor.drain(timeout)


def _forget_after_fork() -> None:
    # The child has no worker thread and may hold a copy of a locked condition: start afresh.
    global _compactor, _guard
    _compactor = None
    _guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(drain)
