"""``anomalies`` records: every warning or error event the bot stores, also kept in the vault.

The events table is the dashboard's (and it may be pruned or reset); the vault keeps the
anomalies append-only beside the trades and decisions they explain: data gaps, rejected or
unresolved orders, reconciliation findings, breaker trips, feed degradations, errors, fees
that could not be valued.
"""

from __future__ import annotations

from typing import Any

from kmg_autotrader.vault.records import VaultKind
from kmg_autotrader.vault.writer import VaultWriter

ANOMALY_LEVELS = frozenset({"warning", "error", "critical"})


class AnomalyLog:
    """An event observer (``EventRepository.observe``) that appends anomalies to the vault."""

    def __init__(self, writer: VaultWriter, mode: str) -> None:
        self.writer = writer
        self.mode = mode

    def __call__(self, event: dict[str, Any]) -> None:
        """Record ``event`` (a stored events row as a dict) when it is a warning or worse
        of this log's mode; never raises."""
        if event.get("level") not in ANOMALY_LEVELS or event.get("mode") != self.mode:
            return
        record = {
            "mode": event.get("mode"),
            "kind": event.get("kind"),
            "level": event.get("level"),
            "source": event.get("source"),
            "message": event.get("message"),
            "details": event.get("details") or {},
            "event_id": event.get("id"),
        }
        self.writer.try_append(VaultKind.ANOMALIES, record, ts_ms=event.get("created_at"))
