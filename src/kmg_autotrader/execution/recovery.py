"""Start-up recovery, the same for every way the bot starts (``kmg run``, ``kmg demo --resume``).

Reconciliation first (fills adopted that landed while no process was looking, unresolved
orders resolved, entries orphaned by the crash finished), then the manager watches again every
order still working, then approvals the crash cut off before their order (risk's pending
entries with no position behind them) are released. In that order: resuming before
reconciling polls orders in the state the dead process left them, and releasing before
reconciling would judge positions the reconciliation is about to close or open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from loguru import logger

from kmg_autotrader.execution.manager import ExecutionManager
from kmg_autotrader.execution.reconcile import Reconciler, ReconciliationReport


class PendingEntries(Protocol):
    """The risk manager's side: approvals recorded before their order was sent."""

    def release_orphaned_entries(self, held: set[str]) -> list[str]:
        """Release pending entries of symbols not in ``held``; the symbols released."""
        ...


@dataclass(slots=True)
class Recovery:
    """What the start-up recovery did."""

    report: ReconciliationReport
    resumed: int = 0  # orders watched again
    released: list[str] = field(default_factory=list)  # symbols whose orphaned approval went

    def line(self) -> str:
        """One log line."""
        released = f", released approvals {', '.join(self.released)}" if self.released else ""
        return f"{' | '.join(self.report.lines())} (resumed {self.resumed} open orders{released})"


async def recover(
    manager: ExecutionManager, reconciler: Reconciler, risk: PendingEntries | None = None
) -> Recovery:
    """Reconcile, then resume the working orders, then release orphaned approvals."""
    report = await reconciler.run()
    resumed = manager.resume()
    released: list[str] = []
    if risk is not None:
        held = {p.symbol for p in manager.store.open_positions()}
        released = risk.release_orphaned_entries(held)
    recovery = Recovery(report, resumed, released)
    logger.info("start-up recovery: {}", recovery.line())
    return recovery
