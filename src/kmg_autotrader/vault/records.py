"""What a vault record looks like on disk: kinds, the envelope and the JSON encoding."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from kmg_autotrader.domain.clock import ms_to_datetime

SCHEMA_VERSION = 1
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,47}$")  # also keeps a kind from escaping the vault dir


class VaultKind(StrEnum):
    """The record streams the bot keeps. Other lower-case names are allowed too."""

    TRADES = "trades"
    DECISIONS = "decisions"
    ADVISOR_CALLS = "advisor_calls"
    DAILY_SUMMARIES = "daily_summaries"
    VERSION_CHANGES = "version_changes"
    ANOMALIES = "anomalies"


class VaultError(Exception):
    """A record could not be written (bad kind, unserialisable value, lock timeout)."""


def check_kind(kind: VaultKind | str) -> str:
    """The kind as a safe directory name, or ``VaultError``."""
    value = str(kind.value if isinstance(kind, Enum) else kind)
    if not _KIND.match(value):
        raise VaultError(f"invalid vault kind {value!r} (lower-case letters, digits, _)")
    return value


def day_of(ts_ms: int) -> str:
    """UTC day ``YYYY-MM-DD`` of an epoch-ms timestamp (the file a record goes to)."""
    return ms_to_datetime(ts_ms).strftime("%Y-%m-%d")


def day_text(day: date | str) -> str:
    """A day given as a date or text, checked and normalised to ``YYYY-MM-DD``."""
    if isinstance(day, datetime):
        day = day.date()
    if isinstance(day, date):
        return day.isoformat()
    return date.fromisoformat(day).isoformat()


def to_jsonable(value: Any) -> Any:
    """Plain JSON types for dataclasses, Decimals (as text, exact), enums, dates and paths.

    NaN and infinities become ``None``: they are not JSON and would break other readers.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise VaultError(f"cannot store a {type(value).__name__} in the vault")


def envelope(kind: str, ts_ms: int, record: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form: schema version, UTC ms timestamp, kind and the record itself."""
    return {
        "schema_version": SCHEMA_VERSION,
        "ts": ts_ms,
        "kind": kind,
        "data": to_jsonable(record),
    }


def encode_line(document: Mapping[str, Any]) -> bytes:
    """One compact JSON line ending in ``\\n`` (JSON escapes any newline inside strings)."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"
