"""Reads the vault back, skipping (and reporting) torn or corrupt lines instead of failing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from loguru import logger

from kmg_autotrader.vault.records import VaultKind, check_kind, day_text
from kmg_autotrader.vault.writer import vault_root


@dataclass(frozen=True)
class VaultProblem:
    """A line the reader skipped: where it is and why."""

    path: Path
    line: int  # 1-based
    offset: int  # byte offset of the line start
    reason: str  # "torn final line" | "invalid JSON" | "not a record"


class VaultReader:
    """Iterates stored records (envelopes: ``schema_version``, ``ts``, ``kind``, ``data``).

    Skipped lines are appended to :attr:`problems` and logged as warnings.
    """

    def __init__(self, data_dir: Path | str) -> None:
        self.root = vault_root(data_dir)
        self.problems: list[VaultProblem] = []

    def kinds(self) -> list[str]:
        """Kinds that have at least one day file."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and any(p.glob("*.jsonl")))

    def days(self, kind: VaultKind | str) -> list[str]:
        """UTC days (``YYYY-MM-DD``) with a file for ``kind``, oldest first."""
        folder = self.root / check_kind(kind)
        return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []

    def read(
        self, kind: VaultKind | str, day: date | str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Records of ``kind`` for one UTC ``day``, or of every day (oldest first) when None."""
        name = check_kind(kind)
        days = [day_text(day)] if day is not None else self.days(name)
        for one_day in days:
            path = self.root / name / f"{one_day}.jsonl"
            if path.is_file():
                yield from self._read_file(path)

    def _read_file(self, path: Path) -> Iterator[dict[str, Any]]:
        offset = 0
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                start, offset = offset, offset + len(raw)
                if not raw.endswith(b"\n"):
                    # a crash mid-write (or a write still in progress): not a record yet
                    self._problem(path, number, start, "torn final line")
                    break
                text = raw.strip()
                if not text:
                    continue
                try:
                    record = json.loads(text)
                except ValueError:
                    self._problem(path, number, start, "invalid JSON")
                    continue
                if not isinstance(record, dict) or "data" not in record:
                    self._problem(path, number, start, "not a record")
                    continue
                yield record

    def _problem(self, path: Path, line: int, offset: int, reason: str) -> None:
        self.problems.append(VaultProblem(path, line, offset, reason))
        logger.warning("vault: skipped {} at {}:{}", reason, path, line)
