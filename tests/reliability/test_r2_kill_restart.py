"""R2, short: ``kill -9`` of ``kmg run --live`` at seeded random moments, restart each time,
against a ``kmg venue`` subprocess that keeps running (its books are the truth).

The full run (50 kills) is ``benchmarks/reliability_r2.py``; this one kills three times, then
runs the bot clean and checks, against the venue's books: every venue trade matched by exactly
one fill of ours and every fill by one trade, no duplicate order, every open position with its
stop (and no stop crossed while its position stayed open), our LIVE balances equal to the
venue's.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.reliability_r2 import R2Config, run_r2


async def test_kill_minus_nine_three_times_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    config = R2Config(kills=3, seed=5, min_delay=3.0, max_delay=9.0, workdir=tmp_path)
    result = await run_r2(config)
    report = "\n".join([result.line(), *result.problems])
    assert result.ok, report
    assert result.kills == 3 and result.fills >= 2, report
    assert (result.lost, result.duplicated, result.duplicate_orders) == (0, 0, 0)
    assert result.balances_equal and result.positions_without_stop == 0
    assert result.line().startswith("R2: 3 kills, ")
