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
from decimal import Decimal
from typing import Protocol

from loguru import logger

from kmg_autotrader.execution.manager import ExecutionManager
from kmg_autotrader.execution.reconcile import Reconciler, ReconciliationReport


class PendingEntries(Protocol):
    """The risk manager's side: approvals recorded before their order was sent, and trades."""

    def release_orphaned_entries(self, held: set[str]) -> list[str]:
        """Release pending entries of symbols not in ``held``; the symbols released."""
        ...

    def record_trade_closed(self, symbol: str, pnl: Decimal, at_ms: int) -> None:
        """A position closed at ``at_ms`` with realised ``pnl``."""
        ...


@dataclass(slots=True)
class Recovery:
    """What the start-up recovery did."""

    report: ReconciliationReport
    resumed: int = 0  # orders watched again
    released: list[str] = field(default_factory=list)  # symbols whose orphaned approval went
    closed: list[int] = field(default_factory=list)  # positions the reconciliation closed

    def line(self) -> str:
        """One log line."""
        released = f", released approvals {', '.join(self.released)}" if self.released else ""
        closed = f", closed positions {self.closed}" if self.closed else ""
        return (
            f"{' | '.join(self.report.lines())} "
            f"(resumed {self.resumed} open orders{released}{closed})"
        )


async def recover(
    manager: ExecutionManager, reconciler: Reconciler, risk: PendingEntries | None = None
) -> Recovery:
    """Reconcile, then resume the working orders, then release orphaned approvals.

    A position the reconciliation closed (its exit filled while no process was looking) is
    reported to ``risk`` as a closed trade, as the running bot reports every close: its PnL
    and the symbol's cooldowns must not depend on when the process died.
    """
    store = manager.store
    holding = {p.id: p for p in store.open_positions() if p.id is not None and p.amount > 0}
    report = await reconciler.run()
    resumed = manager.resume()
    released: list[str] = []
    closed: list[int] = []
    if risk is not None:
        held = {p.symbol for p in store.open_positions()}
        released = risk.release_orphaned_entries(held)
        for pid, before in holding.items():
            after = store.get_position(pid)
            if after is not None and after.closed_at is not None:
                risk.record_trade_closed(before.symbol, after.realized_pnl, after.closed_at)
                closed.append(pid)
    recovery = Recovery(report, resumed, released, closed)
    logger.info("start-up recovery: {}", recovery.line())
    return recovery
