"""The audit log: every advisor consultation goes to the database and to an optional sink
(the JSONL vault). Writing the record must never stop the bot, so failures are logged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from loguru import logger

from kmg_autotrader.domain import Candidate, Mode

AuditSink = Callable[[dict[str, Any]], None]
#: Finds the stored signal row a candidate came from (to link the call to it), or None.
SignalLookup = Callable[[Candidate], int | None]


class CallStore(Protocol):
    """What the recorder writes to (``AdvisorCallRepository`` fits)."""

    def add(self, mode: Mode | str, **fields: Any) -> int:
        """Store one call; returns its id."""
        ...


class MemoryCallStore:
    """Keeps calls in memory: a backtest's replayed answers must not be written into the
    account's audit log (they would show as calls on the dashboard and count toward the
    hourly budget)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, mode: Mode | str, **fields: Any) -> int:
        """Keep one call; returns its 1-based position."""
        self.rows.append({"mode": str(mode), **fields})
        return len(self.rows)


@dataclass(slots=True)
class CallRecord:
    """One consultation: what was asked, what came back, and what was made of it."""

    symbol: str
    timestamp: int
    created_at: int
    model: str
    prompt_version: str = ""
    prompt_hash: str = ""
    prompt: str = ""
    raw_answer: str | None = None
    parsed: dict[str, Any] | None = None
    valid: bool = False
    errors: list[str] = field(default_factory=list)
    repaired: bool = False
    fallback: str | None = None
    action: str | None = None
    confidence: float | None = None
    latency_ms: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    signal_id: int | None = None

    def columns(self) -> dict[str, Any]:
        """The record as ``AdvisorCallRow`` columns."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class AuditRecorder:
    """Writes each :class:`CallRecord` to the database and to the sink."""

    def __init__(
        self,
        store: CallStore,
        mode: Mode,
        sink: AuditSink | None = None,
        *,
        signal_lookup: SignalLookup | None = None,
    ) -> None:
        self._store = store
        self._mode = mode
        self._sink = sink
        self._signal_lookup = signal_lookup

    def record(self, record: CallRecord, candidate: Candidate) -> int | None:
        """Store ``record``; returns the row id (None if the database write failed)."""
        call_id: int | None = None
        if record.signal_id is None and self._signal_lookup is not None:
            try:
                record.signal_id = self._signal_lookup(candidate)
            except Exception as exc:  # the link is a convenience for the dashboard
                logger.warning("advisor call not linked to its signal: {}", type(exc).__name__)
        try:
            call_id = self._store.add(self._mode, **record.columns())
        except Exception as exc:  # the trade decision must not depend on the audit write
            logger.error("advisor audit row not stored: {}: {}", type(exc).__name__, exc)
        if self._sink is not None:
            try:
                self._sink(
                    {
                        "id": call_id,
                        "mode": self._mode.value,
                        "side": candidate.side.value,
                        "strategy": candidate.strategy,
                        "rule_confidence": candidate.confidence,
                        **record.columns(),
                    }
                )
            except Exception as exc:
                logger.error("advisor audit sink failed: {}: {}", type(exc).__name__, exc)
        return call_id
