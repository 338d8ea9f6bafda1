"""The paper exchange: a fast in-memory simulated exchange with a pluggable ledger."""

from kmg_autotrader.execution.paper.engine import PaperEngine, PaperSettings
from kmg_autotrader.execution.paper.exchange import PaperExchange
from kmg_autotrader.execution.paper.ledger import FileLedger, MemoryLedger, PaperLedger

__all__ = [
    "FileLedger",
    "MemoryLedger",
    "PaperEngine",
    "PaperExchange",
    "PaperLedger",
    "PaperSettings",
]
