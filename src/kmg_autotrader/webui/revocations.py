"""Logged-out sessions, kept in ``DATA_DIR/web_revoked_sessions.json`` (mode 0600).

A session cookie stays valid until it expires (12 h), and with a fixed ``API_TOKEN`` and signing
key it would be valid again after a restart if logouts lived in memory only. The file holds
``{session id: expiry (UTC epoch seconds)}``; expired entries are dropped on every write. It is
re-read when another process (``kmg web`` beside ``kmg run``) changed it, so a logout in one
dashboard counts in the other.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from loguru import logger

REVOKED_FILE = "web_revoked_sessions.json"
MAX_ENTRIES = 10_000  # a day of logouts is a handful; this only bounds a damaged file


class RevokedSessions:
    """Session ids logged out before they expire; persistent when ``path`` is given."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._revoked: dict[str, float] = {}
        self._mtime: int | None = None
        self._reload()

    def _reload(self) -> None:
        """Read the file when it changed since the last read (another process may write it)."""
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.warning("cannot read {}: {}", self.path, exc.strerror or exc)
            return
        if mtime == self._mtime:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable {}: {}", self.path, type(exc).__name__)
            return
        self._mtime = mtime
        if isinstance(data, dict):
            for sid, expiry in data.items():
                if isinstance(sid, str) and isinstance(expiry, int | float):
                    self._revoked[sid] = max(float(expiry), self._revoked.get(sid, 0.0))

    def __contains__(self, session_id: object) -> bool:
        self._reload()
        expiry = self._revoked.get(session_id) if isinstance(session_id, str) else None
        return expiry is not None and expiry > time.time()

    def add(self, session_id: str, ttl_seconds: float) -> None:
        """Revoke ``session_id`` until it would have expired anyway; persist when possible."""
        self._reload()
        now = time.time()
        self._revoked = {k: v for k, v in self._revoked.items() if v > now}
        self._revoked[session_id] = now + ttl_seconds
        if len(self._revoked) > MAX_ENTRIES:
            newest = sorted(self._revoked.items(), key=lambda item: item[1])[-MAX_ENTRIES:]
            self._revoked = dict(newest)
        if self.path is not None:
            self._write(self.path)

    def _write(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self._revoked, handle)
            os.replace(tmp, path)  # atomic: a reader sees the old or the new list
            self._mtime = path.stat().st_mtime_ns
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            logger.warning(
                "cannot save the logout in {} ({}): it holds until this process stops",
                path,
                exc.strerror or exc,
            )
