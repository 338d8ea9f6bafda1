"""Child process for the demo crash tests: runs ``kmg demo`` (its runner, as the CLI does) and
dies with ``os._exit`` — no cleanup, no commit, like ``kill -9`` — at a named moment.

Stages:

* ``exit_fill``: an exit's fill is in the paper book (its ledger file is written), the database
  has not heard of it yet (the order is still open there). The first take-profit exit.
* ``approved``: the risk manager approved an entry (stored), its order was not sent yet. The
  ``N``-th entry (``approved:N``).

Usage: python demo_crash_child.py STAGE DATA_DIR LIMIT
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kmg_autotrader.autopilot.runner import run_demo
from kmg_autotrader.config import load_settings
from kmg_autotrader.domain import OrderIntent, Side
from kmg_autotrader.execution.manager import ExecutionManager
from kmg_autotrader.execution.orders import OrderClient
from kmg_autotrader.execution.ports import OrderDict, dec

CRASH_CODE = 17


def _die_at_exit_fill() -> None:
    original = OrderClient.sync

    async def sync(self: OrderClient, client_order_id: str, raw: OrderDict | None = None) -> Any:
        order = self.store.get_order(client_order_id)
        if order is not None and order.purpose == "take_profit":
            if raw is None:
                raw = await self._fetch(order)
            if raw is not None and dec(raw.get("filled")) > 0:
                os._exit(CRASH_CODE)  # filled in the paper book, not in the database
        return await original(self, client_order_id, raw)

    OrderClient.sync = sync  # type: ignore[method-assign]


def _die_at_approval(nth: int) -> None:
    original = ExecutionManager.execute
    seen = [0]

    async def execute(self: ExecutionManager, intent: OrderIntent) -> Any:
        if intent.side is Side.BUY:
            seen[0] += 1
            if seen[0] == nth:
                os._exit(CRASH_CODE)  # approved and stored, no position, no order
        return await original(self, intent)

    ExecutionManager.execute = execute  # type: ignore[method-assign]


def main() -> None:
    stage, data_dir, limit = sys.argv[1:4]
    if stage == "exit_fill":
        _die_at_exit_fill()
    elif stage.startswith("approved:"):
        _die_at_approval(int(stage.split(":")[1]))
    else:
        raise SystemExit(f"unknown stage {stage}")
    settings = load_settings(None, data_dir=Path(data_dir))
    asyncio.run(run_demo(settings, speed=0, limit=int(limit)))
    sys.exit(0)  # the crash point was never reached


if __name__ == "__main__":
    main()
