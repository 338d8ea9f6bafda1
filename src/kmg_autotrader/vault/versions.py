"""``version_changes`` records: which code, strategy, risk limits and advisor the bot traded with.

A record is written when the bot starts with versions that differ from the newest record (or
when there is none yet), and when they change while it runs (a risk-limit edit from the
dashboard). Each record holds the full set in force, the previous set and the names that
changed, so a reader never has to replay the history to know what applied at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from loguru import logger

from kmg_autotrader.vault.reader import VaultReader
from kmg_autotrader.vault.records import VaultKind, to_jsonable
from kmg_autotrader.vault.writer import VaultWriter

Versions = dict[str, Any]


def last_versions(reader: VaultReader) -> Versions | None:
    """The versions of the newest ``version_changes`` record, None when there is none.

    Only the newest day file is read (records are appended in time order).
    """
    days = reader.days(VaultKind.VERSION_CHANGES)
    for day in reversed(days):
        last: dict[str, Any] | None = None
        for record in reader.read(VaultKind.VERSION_CHANGES, day):
            last = record
        if last is not None:
            versions = last["data"].get("versions")
            return dict(versions) if isinstance(versions, Mapping) else None
    return None


class VersionRecorder:
    """Writes a ``version_changes`` record whenever ``current()`` differs from the last one."""

    def __init__(self, writer: VaultWriter, current: Callable[[], Versions]) -> None:
        self.writer = writer
        self.current = current
        self._known: Versions | None = None
        self._loaded = False

    def check(self, ts_ms: int, *, reason: str = "change") -> bool:
        """Record the versions in force at ``ts_ms`` if they changed; True when written.

        Never raises: a failure to read or write is logged (the trading loop calls this).
        """
        try:
            now = to_jsonable(self.current())
            if not self._loaded:
                self._known = last_versions(VaultReader(self.writer.root.parent))
                self._loaded = True
            if now == self._known:
                return False
            previous = self._known
            changed = sorted(
                key
                for key in set(now) | set(previous or {})
                if (previous or {}).get(key) != now.get(key)
            )
            record = {"reason": reason, "versions": now, "previous": previous, "changed": changed}
            if not self.writer.try_append(VaultKind.VERSION_CHANGES, record, ts_ms=ts_ms):
                return False
            self._known = now
            logger.info("versions recorded ({}): {}", reason, ", ".join(changed))
            return True
        except Exception as exc:  # a version record must never stop trading
            logger.error("vault: could not check the versions: {}", exc)
            return False
