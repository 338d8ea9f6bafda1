"""R3, short: a WebSocket drop every simulated minute for two hours of 5m candles.

``kmg run --live`` against a ``kmg venue`` subprocess whose clock the test drives; the venue's
``ws_drop`` fault closes every stream socket once a minute (120 drops). Every closed candle
must reach the bot exactly once with the venue's values, and every decision must be the same
as in an undisturbed run of the same candles. The full day is
``benchmarks/reliability_r3.py --hours 24``.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.reliability_r3 import R3Config, run_r3


async def test_a_drop_every_minute_misses_nothing_and_changes_no_decision(
    tmp_path: Path,
) -> None:
    result = await run_r3(R3Config(hours=2, seed=3, workdir=tmp_path))
    report = "\n".join([result.line(), *result.problems])
    assert result.ok, report
    assert (result.drops, result.candles, result.missed, result.duplicated) == (120, 24, 0, 0)
    assert result.identical and result.decisions > 0, report
