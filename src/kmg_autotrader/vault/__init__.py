"""The data vault: append-only JSONL records per day, and periodic state snapshots.

Usage (from the autopilot)::

    vault = VaultWriter(settings.data_dir)
    vault.append(VaultKind.TRADES, {"symbol": "BTC/USDT", "side": "buy", ...})
    for record in VaultReader(settings.data_dir).read(VaultKind.TRADES, day="2026-11-24"):
        ...
    SnapshotWriter(settings.data_dir, keep=48).write({"metadata": ..., "account": ...})
"""

from kmg_autotrader.vault.reader import VaultProblem, VaultReader
from kmg_autotrader.vault.records import SCHEMA_VERSION, VaultError, VaultKind
from kmg_autotrader.vault.snapshots import SnapshotWriter, atomic_write_bytes, load_latest
from kmg_autotrader.vault.writer import VaultWriter

__all__ = [
    "SCHEMA_VERSION",
    "SnapshotWriter",
    "VaultError",
    "VaultKind",
    "VaultProblem",
    "VaultReader",
    "VaultWriter",
    "atomic_write_bytes",
    "load_latest",
]
