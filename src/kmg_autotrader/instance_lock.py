"""One running instance per DATA_DIR and mode (``demo``, ``paper``, ``live``).

A second ``kmg demo`` in the same DATA_DIR used to overwrite the first one's dashboard token
and delete its database before it failed on the busy port (issue 19). The lock is an OS lock
(``fcntl.flock``) on ``DATA_DIR/.kmg-<mode>.lock``, taken before anything else is touched:
the kernel releases it when the process ends however it ends (``kill -9`` included), so a
stale file never blocks. The file holds the holder's pid, port and command, for the one line
a refused second instance prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kmg_autotrader.fs import private_dir, private_opener


class InstanceLockedError(Exception):
    """Another process holds the lock; the message names it (pid, port, command)."""


@dataclass
class InstanceLock:
    """A held lock: keep the object alive as long as the instance runs (or call release)."""

    path: Path
    handle: IO[str]

    def release(self) -> None:
        """Release the lock (the process ending does the same)."""
        if not self.handle.closed:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def lock_path(data_dir: Path, mode: str) -> Path:
    """The lock file of ``mode`` under ``data_dir``."""
    return data_dir / f".kmg-{mode}.lock"


def _describe(holder: dict[str, object], mode: str, path: Path) -> str:
    pid = holder.get("pid", "?")
    port = holder.get("port")
    where = f"port {port}" if port else "no dashboard"
    command = holder.get("command") or f"kmg {mode}"
    return (
        f"another `{command}` is running on this DATA_DIR (pid {pid}, {where}); "
        f"stop it first, or use another DATA_DIR (lock: {path})"
    )


def acquire(
    data_dir: Path, mode: str, *, port: int | None = None, command: str | None = None
) -> InstanceLock:
    """Take ``mode``'s lock under ``data_dir`` without waiting, recording pid, port and
    ``command`` (default: this process's ``kmg`` command line).

    Raises :class:`InstanceLockedError` naming the running holder when it is taken.
    """
    private_dir(data_dir)
    path = lock_path(data_dir, mode)
    # "a": opening never truncates what the holder wrote; only the holder rewrites it
    handle = open(path, "a+", encoding="utf-8", opener=private_opener)  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        try:
            holder = json.loads(handle.read() or "{}")
        except ValueError:  # written half-way at this instant: still a holder
            holder = {}
        handle.close()
        raise InstanceLockedError(_describe(holder, mode, path)) from None
    except BaseException:
        handle.close()
        raise
    if command is None:
        command = " ".join(["kmg", *sys.argv[1:]]) if sys.argv[1:] else f"kmg {mode}"
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "port": port, "command": command}))
    handle.flush()
    return InstanceLock(path, handle)
