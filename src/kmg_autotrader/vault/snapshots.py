"""Periodic JSON state snapshots, written atomically, the newest N kept.

``DATA_DIR/snapshots/snapshot-YYYYMMDDTHHMMSSmmmZ.json`` plus ``latest.json``. Each file is
written to a temp file in the same directory, fsynced and renamed over its name, so a reader
(or a crash) only ever sees a complete old file or a complete new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kmg_autotrader.domain.clock import Clock, WallClock, ms_to_datetime, ms_to_iso
from kmg_autotrader.vault.records import SCHEMA_VERSION, to_jsonable

LATEST = "latest.json"
_PREFIX = "snapshot-"
_STALE_TEMP_SECONDS = 300  # an older temp file is a crash leftover, not a write in progress


def snapshot_dir(data_dir: Path | str) -> Path:
    """``DATA_DIR/snapshots``."""
    return Path(data_dir) / "snapshots"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via temp file + fsync + ``os.replace`` (+ directory fsync)."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (not supported everywhere; best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def snapshot_name(ts_ms: int) -> str:
    """File name for a snapshot taken at ``ts_ms``; names sort in time order."""
    moment = ms_to_datetime(ts_ms)
    return f"{_PREFIX}{moment:%Y%m%dT%H%M%S}{ts_ms % 1000:03d}Z.json"


class SnapshotWriter:
    """Writes snapshots of the bot's state and prunes all but the newest ``keep``."""

    def __init__(self, data_dir: Path | str, *, keep: int = 48, clock: Clock | None = None) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.dir = snapshot_dir(data_dir)
        self.keep = keep
        self.clock: Clock = clock or WallClock()

    def write(self, state: Mapping[str, Any]) -> Path:
        """Store ``state`` (metadata, account, risk, positions, performance, health…).

        A ``snapshot`` key with schema version and time is added. Returns the snapshot path;
        raises ``VaultError`` for a value JSON cannot hold and ``OSError`` when the disk refuses.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        ts = self.clock.now_ms()
        path = self.dir / snapshot_name(ts)
        while path.exists():  # two snapshots in one millisecond: keep both
            ts += 1
            path = self.dir / snapshot_name(ts)
        document = dict(to_jsonable(state))
        document["snapshot"] = {"schema_version": SCHEMA_VERSION, "ts": ts, "time": ms_to_iso(ts)}
        data = json.dumps(document, ensure_ascii=False, indent=1, allow_nan=False).encode()
        atomic_write_bytes(path, data)
        atomic_write_bytes(self.dir / LATEST, data)
        self.prune()
        return path

    def snapshots(self) -> list[Path]:
        """Snapshot files, oldest first."""
        if not self.dir.is_dir():
            return []
        return sorted(self.dir.glob(f"{_PREFIX}*.json"))

    def prune(self) -> list[Path]:
        """Delete all but the newest ``keep`` snapshots and stale temp files; return deleted."""
        removed = self.snapshots()[: -self.keep]
        now = time.time()
        for temp in self.dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if now - temp.stat().st_mtime > _STALE_TEMP_SECONDS:
                    removed.append(temp)
        for path in removed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return removed


def load_latest(data_dir: Path | str) -> dict[str, Any] | None:
    """The newest snapshot (``latest.json``), or None when there is none."""
    path = snapshot_dir(data_dir) / LATEST
    try:
        with open(path, "rb") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        return None
    return document if isinstance(document, dict) else None
