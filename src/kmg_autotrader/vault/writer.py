"""Append-only JSONL writer: ``DATA_DIR/vault/<kind>/YYYY-MM-DD.jsonl``.

A record is one ``os.write`` of a complete line on an ``O_APPEND`` descriptor, made under an
exclusive portalocker lock so several processes can append to the same file. If an earlier
crash left a torn last line (no trailing newline), the next append starts with ``\\n`` so the
torn fragment stays on its own line, where the reader skips and reports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import portalocker
from loguru import logger

from kmg_autotrader.domain.clock import Clock, WallClock
from kmg_autotrader.vault.records import (
    VaultError,
    VaultKind,
    check_kind,
    day_of,
    encode_line,
    envelope,
)


def vault_root(data_dir: Path | str) -> Path:
    """``DATA_DIR/vault``."""
    return Path(data_dir) / "vault"


class VaultWriter:
    """Appends records to the vault; safe across threads and processes."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        clock: Clock | None = None,
        fsync: bool = True,
        lock_timeout: float = 5.0,
    ) -> None:
        self.root = vault_root(data_dir)
        self.clock: Clock = clock or WallClock()
        self.fsync = fsync
        self.lock_timeout = lock_timeout

    def path_for(self, kind: VaultKind | str, day: str) -> Path:
        """The file that holds ``kind`` records of UTC ``day`` (``YYYY-MM-DD``)."""
        return self.root / check_kind(kind) / f"{day}.jsonl"

    def append(
        self, kind: VaultKind | str, record: Mapping[str, Any], *, ts_ms: int | None = None
    ) -> dict[str, Any]:
        """Store ``record`` and return the stored envelope.

        ``ts_ms`` (UTC epoch ms, default: the clock's now) also picks the day file.
        Raises :class:`VaultError` for a bad kind, an unserialisable value or a lock timeout,
        and ``OSError`` when the disk refuses; callers in the trading loop catch both.
        """
        name = check_kind(kind)
        ts = int(ts_ms) if ts_ms is not None else self.clock.now_ms()
        document = envelope(name, ts, record)
        try:
            line = encode_line(document)
        except (TypeError, ValueError) as exc:
            raise VaultError(f"record is not JSON-serialisable: {exc}") from None
        path = self.path_for(name, day_of(ts))
        path.parent.mkdir(parents=True, exist_ok=True)
        # "a+b": O_APPEND|O_CREAT, readable so the last byte can be checked; unbuffered
        with open(path, "a+b", buffering=0) as handle:
            self._lock(handle)
            try:
                size = os.fstat(handle.fileno()).st_size
                if size and os.pread(handle.fileno(), 1, size - 1) != b"\n":
                    line = b"\n" + line  # repair: never glue a record onto a torn line
                written = os.write(handle.fileno(), line)
                if written != len(line):  # disk full mid-write: the reader will skip it
                    raise OSError(f"short write to the vault ({written} of {len(line)} bytes)")
                if self.fsync:
                    os.fsync(handle.fileno())
            finally:
                portalocker.unlock(handle)
        return document

    def try_append(
        self, kind: VaultKind | str, record: Mapping[str, Any], *, ts_ms: int | None = None
    ) -> bool:
        """:meth:`append` for the trading loop: logs and returns False instead of raising."""
        try:
            self.append(kind, record, ts_ms=ts_ms)
            return True
        except (VaultError, OSError) as exc:
            logger.error("vault: could not append a {} record: {}", kind, exc)
            return False

    def _lock(self, handle: IO[bytes]) -> None:
        """Exclusive lock, polled so a wedged process cannot block us forever."""
        deadline = time.monotonic() + self.lock_timeout
        flags = portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
        while True:
            try:
                portalocker.lock(handle, flags)
                return
            except portalocker.LockException:
                if time.monotonic() >= deadline:
                    raise VaultError("timed out waiting for the vault file lock") from None
                time.sleep(0.001)
