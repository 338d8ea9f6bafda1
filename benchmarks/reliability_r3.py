"""Reliability R3: a WebSocket drop every simulated minute for a day of candles.

Two runs of ``kmg run --live`` against a ``kmg venue`` subprocess, each from scratch, on the
same candles: one *disturbed* (the venue's ``ws_drop`` fault closes every stream socket once
per simulated minute: 1,440 drops for 24 hours), one *undisturbed*. The venue's clock is
driven through its control endpoint (``--speed 0``, then one simulated minute per step, as fast
as the bot keeps up): both runs then start on the same candle and warm up on the same history,
so their decisions can be compared exactly (the two runs go side by side). Stops and targets
are set 20 and 40 ATR away (:data:`CANDLE_EXITS`) so that positions change on decisions at
candle closes only. Each simulated minute is cut in two at a seeded
second; a ``ws_drop`` is queued before one of the two parts (seeded), fires on the first message
the venue streams in it, and the driver waits until the bot's candle stream is back before it
goes on.

Checks, for the ``hours × 12`` candles of the day:

* 0 missed, 0 duplicated closed candles: every venue candle was stored by the bot with the
  venue's exact open/high/low/close/volume (its candle store), handled once (one equity mark
  per candle close), and no candle was handed over twice (the signal engine refuses an older
  or repeated candle: an error event) nor a gap reported (``data_gap`` events);
* every decision identical to the undisturbed run: the signal rows (rule, side, strength,
  confidence, price, regime, reason, filters passed or failed, indicators, trace) and the risk
  verdicts on them (approved, reason code, price, stop, target) by candle time, leaving out
  the wall-clock fields (row ids, created_at, the order size and equity checks, which follow
  the fill prices of earlier orders and so the moment they reached the venue).

Run: ``python benchmarks/reliability_r3.py --hours 24 --seed 1``; prints ``R3: D drops, C
candles, 0 missed, 0 duplicated, decisions identical: yes`` and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: tests.e2e, r2

from benchmarks.reliability_r2 import (
    BUSY_RISK,
    SYMBOL,
    TF_MS,
    TIMEFRAME,
    bot_settings,
    set_risk_params,
    venue_candles,
)
from tests.e2e.harness import HarnessError, Rehearsal, VenueConfig, wait_until

from kmg_autotrader.domain import Mode
from kmg_autotrader.storage.candle_store import CandleStore
from kmg_autotrader.storage.repositories import MAX_PAGE

# Stops and targets far away (20 and 40 ATR): positions then open and close on decisions at
# candle closes only. A mental stop fires on the first price tick through it, and which tick
# comes first against a candle's close is a race no two live runs share (the candle stream
# and the price stream are separate sockets): such an exit would make the next decisions
# differ for a reason that is not the candles.
CANDLE_EXITS: dict[str, str] = {"SIGNAL_ATR_STOP_MULT": "20", "SIGNAL_ATR_TARGET_MULT": "40"}
MINUTE_MS = 60_000
DAY_MS = 86_400_000
WARMUP = 1100  # candles the venue shows as history (the bot downloads 1000 of them)
# signal and risk fields that follow the wall clock or earlier fills, not the candles
SIGNAL_VOLATILE = frozenset({"id", "created_at", "mode"})
RISK_COMPARED = ("approved", "reason_code", "side", "price", "stop_loss", "take_profit")


@dataclass
class R3Config:
    """One R3 run: ``hours`` of 5m candles, a drop each simulated minute when ``drops``."""

    hours: float = 24.0
    seed: int = 1
    exchange: str = "binance"
    pace: float = 0.01  # wall seconds between two clock moves (the bot handles what came)
    reconnect_timeout: float = 15.0
    log_level: str = "INFO"  # the bot's LOG_LEVEL (DEBUG shows every candle it was handed)
    workdir: Path | None = None

    @property
    def minutes(self) -> int:
        """Simulated minutes driven."""
        return round(self.hours * 60) // 5 * 5

    @property
    def candles(self) -> int:
        """Candles closed in the driven time."""
        return self.minutes // 5


@dataclass
class RunRecord:
    """What one run left: the bot's records, normalised to the data's own times."""

    drops: int = 0
    scheduled: int = 0
    stored: dict[int, tuple[float, ...]] = field(default_factory=dict)
    truth: dict[int, tuple[float, ...]] = field(default_factory=dict)
    marks: Counter[int] = field(default_factory=Counter)
    repeats: list[str] = field(default_factory=list)  # errors of a candle handed over twice
    gaps: int = 0
    signals: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    risk: dict[int, list[tuple[Any, ...]]] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class R3Result:
    """The comparison of the disturbed run with the undisturbed one."""

    config: R3Config
    drops: int = 0
    scheduled: int = 0
    candles: int = 0
    missed: int = 0
    duplicated: int = 0
    decisions: int = 0
    identical: bool = False
    problems: list[str] = field(default_factory=list)
    seconds: tuple[float, float] = (0.0, 0.0)

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return not self.problems

    def line(self) -> str:
        """The one-line figure."""
        return (
            f"R3: {self.drops} drops, {self.candles} candles, {self.missed} missed, "
            f"{self.duplicated} duplicated, decisions identical: "
            f"{'yes' if self.identical else 'no'}"
        )


def _all_rows(fetch: Any, mode: Mode) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = fetch(mode, limit=MAX_PAGE, offset=len(rows))
        rows.extend(page)
        if len(page) < MAX_PAGE:
            return rows


async def run_once(config: R3Config, workdir: Path, *, drops: bool) -> RunRecord:
    """One run from scratch (a fresh venue and bot); returns what the bot recorded."""
    started = time.monotonic()
    record = RunRecord()
    rng = random.Random(config.seed)
    venue = VenueConfig(exchange=config.exchange, speed=0, warmup=WARMUP)
    settings = {**bot_settings(config.exchange), **CANDLE_EXITS}
    async with Rehearsal(workdir, venue, bot_settings=settings) as r:
        state = await r.state()
        shift = int(state["shift_ms"])
        first = int(state["symbols"][SYMBOL]["first_ms"])
        # the same data candle in every run, whatever the time of day it starts: the venue's
        # start lies less than a day after its warm-up (its re-stamping shift is whole days)
        start = first + WARMUP * TF_MS + DAY_MS + 2 * TF_MS
        await r.client.advance(to=start - MINUTE_MS)  # the bot starts (and warms up) here
        r.data_dir.mkdir(parents=True, exist_ok=True)
        set_risk_params(r.db.url, BUSY_RISK, source="reliability_r3")
        r.start_bot(live=True, LOG_LEVEL=config.log_level)
        await r.wait_db()

        def kinds() -> set[str]:
            return {e["kind"] for e in r.db.events(Mode.LIVE)}

        await r.wait_for(lambda: "ws_connected" in kinds(), "the candle stream", timeout=90)
        await r.client.advance(to=start)  # prices move: the ticker stream shows its first
        await r.wait_for(lambda: "price_ws_connected" in kinds(), "the price stream", 30)
        for _ in range(config.minutes):
            # the minute in two parts; the drop lands at the start of one of them (seeded):
            # a drop late in the minute leaves the candle's close to the REST backfill of the
            # reconnect, an early one to the new socket
            first_part = rng.randrange(5, 56) * 1000
            parts = (first_part, MINUTE_MS - first_part)
            drop_in = rng.randrange(2) if drops else -1
            for i, part in enumerate(parts):
                if i == drop_in:
                    connected_before = _latest_id(r, "ws_connected")
                    await r.client.add_faults({"kind": "ws_drop", "endpoint": "ws"})
                    record.scheduled += 1
                await r.client.advance(ms=part)
                await asyncio.sleep(config.pace)
                if i == drop_in:
                    await _wait_reconnected(r, connected_before, config.reconnect_timeout)
        # one more candle and a minute, so the last one of the day is seen closed (the next
        # one has started) and marked (a mark is written when the next candle closes)
        last_close = start + config.minutes * MINUTE_MS
        await r.client.advance(ms=TF_MS + MINUTE_MS)

        async def marked() -> bool:
            points = r.db.repos.equity.series(Mode.LIVE, since=last_close)
            if any(p.timestamp == last_close for p in points):
                return True
            # time goes on (a second per look): a socket shows what it holds when the next
            # message comes, as an exchange's stream always brings one soon
            await r.client.advance(ms=1000)
            return False

        await r.wait_for(marked, "the last candle of the day handled", timeout=120)
        await r.stop_bot(timeout=15)
        faults = await r.client.faults()
        record.drops = int(faults["counts"].get("ws_drop", 0))
        await _collect(r, record, start, last_close, shift)
    record.seconds = time.monotonic() - started
    return record


async def _wait_reconnected(r: Rehearsal, before: int, timeout: float) -> None:
    """Until the queued drop fired and the bot's candle stream streams again (a
    ``ws_connected`` newer than event ``before``: a new socket subscribed and showed candles).
    The price stream is not waited for: dropped before its first ticker it backs off and polls
    REST, as it should."""

    async def back() -> bool:
        faults = await r.client.faults()
        if any(f["kind"] == "ws_drop" for f in faults["queued"]):
            # no socket was subscribed when the venue last streamed (one was reconnecting):
            # a millisecond more streams again, and the drop fires on it
            await r.client.advance(ms=1)
            return False
        return _latest_id(r, "ws_connected") > before

    await wait_until(
        back,
        what="the bot's candle stream back after a drop",
        timeout=timeout,
        watch=r.watch,
        interval=0.005,
    )


def _latest_id(r: Rehearsal, kind: str) -> int:
    rows = r.db.repos.events.recent(Mode.LIVE, kind=kind, limit=1)
    return int(rows[0]["id"]) if rows else 0


async def _collect(
    r: Rehearsal, record: RunRecord, start: int, last_close: int, shift: int
) -> None:
    """Read the bot's candles, marks, errors and decisions of ``(start, last_close]``."""
    truth = await venue_candles(r.config.exchange, r.venue.url, start, last_close)
    record.truth = {int(c[0]) - shift: tuple(float(v) for v in c[1:6]) for c in truth}
    stored = CandleStore(r.data_dir).read(r.config.exchange, SYMBOL, TIMEFRAME, start, last_close)
    for row in stored.itertuples(index=False):
        record.stored[int(row.timestamp) - shift] = (
            float(row.open),
            float(row.high),
            float(row.low),
            float(row.close),
            float(row.volume),
        )
    for point in r.db.repos.equity.series(Mode.LIVE, since=start + TF_MS):
        if point.timestamp <= last_close and point.timestamp % TF_MS == 0:
            record.marks[point.timestamp - TF_MS - shift] += 1
    for event in r.db.events(Mode.LIVE):
        if event["kind"] == "data_gap":
            record.gaps += 1
        elif event["kind"] == "error" and "candle" in event["message"]:
            record.repeats.append(event["message"])
    for row in _all_rows(r.db.repos.signals.recent, Mode.LIVE):
        ts = int(row["timestamp"])
        if not start - TF_MS <= ts < last_close:  # from the candle that closed at the start
            continue
        kept = {k: v for k, v in row.items() if k not in SIGNAL_VOLATILE}
        kept["timestamp"] = ts - shift
        kept["_id"] = row["id"]
        record.signals.setdefault(ts - shift, []).append(kept)
    by_signal = {s["_id"]: ts for ts, rows in record.signals.items() for s in rows}
    for row in _all_rows(r.db.repos.risk_decisions.recent, Mode.LIVE):
        ts = by_signal.get(row.get("signal_id"))
        if ts is not None:
            record.risk.setdefault(ts, []).append(tuple(row[k] for k in RISK_COMPARED))
    for rows in record.signals.values():
        for row in rows:
            row.pop("_id")


def compare(config: R3Config, disturbed: RunRecord, calm: RunRecord) -> R3Result:
    """The R3 figures: the disturbed run's candles against the venue's, its decisions against
    the undisturbed run's."""
    result = R3Result(config, drops=disturbed.drops, scheduled=disturbed.scheduled)
    result.seconds = (disturbed.seconds, calm.seconds)
    problems = result.problems
    day = sorted(disturbed.truth)
    result.candles = len(day)
    if len(day) != config.candles:
        problems.append(f"the venue served {len(day)} candles of the day, not {config.candles}")
    for name, run in (("disturbed", disturbed), ("undisturbed", calm)):
        for ts in day:
            if ts not in run.stored:
                problems.append(f"{name}: candle {ts} missed (not stored)")
            elif run.stored[ts] != run.truth.get(ts):
                problems.append(
                    f"{name}: candle {ts} stored as {run.stored[ts]}, the venue has "
                    f"{run.truth.get(ts)}"
                )
            if run.marks[ts] == 0:
                problems.append(f"{name}: candle {ts} missed (never handled)")
            elif run.marks[ts] > 1:
                problems.append(f"{name}: candle {ts} handled {run.marks[ts]} times")
        problems.extend(f"{name}: {m}" for m in run.repeats)
        if run.gaps:
            problems.append(f"{name}: {run.gaps} data gap(s) reported")
    result.missed = sum(1 for ts in day if ts not in disturbed.stored or disturbed.marks[ts] == 0)
    result.duplicated = sum(1 for ts in day if disturbed.marks[ts] > 1) + len(disturbed.repeats)
    if disturbed.scheduled and disturbed.drops < disturbed.scheduled:
        problems.append(f"only {disturbed.drops} of {disturbed.scheduled} drops fired")
    if disturbed.truth != calm.truth:
        problems.append("the two runs did not replay the same candles")
    result.decisions = sum(len(v) for v in disturbed.signals.values())
    differences = 0
    for ts in sorted(set(disturbed.signals) | set(calm.signals)):
        a, b = disturbed.signals.get(ts, []), calm.signals.get(ts, [])
        if a != b:
            differences += 1
            problems.append(f"decision at {ts} differs: disturbed {a}, undisturbed {b}")
        if disturbed.risk.get(ts, []) != calm.risk.get(ts, []):
            differences += 1
            problems.append(
                f"risk verdict at {ts} differs: disturbed {disturbed.risk.get(ts)}, "
                f"undisturbed {calm.risk.get(ts)}"
            )
    if result.decisions == 0:
        problems.append("no decision in the day: nothing was compared")
    result.identical = differences == 0 and result.decisions > 0
    return result


async def run_r3(config: R3Config) -> R3Result:
    """The disturbed run, the undisturbed run, and their comparison."""
    with tempfile.TemporaryDirectory(prefix="kmg-r3-") as tmp:
        root = config.workdir or Path(tmp)
        # side by side: two venues, two bots, nothing shared but the machine
        disturbed, calm = await asyncio.gather(
            run_once(config, root / "disturbed", drops=True),
            run_once(config, root / "undisturbed", drops=False),
        )
    return compare(config, disturbed, calm)


def parse_args(argv: Sequence[str] | None = None) -> R3Config:
    """``--hours H --seed S [--workdir DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the drops' moments")
    parser.add_argument("--exchange", choices=("binance", "kraken"), default="binance")
    parser.add_argument("--workdir", type=Path, help="keep logs, books and databases here")
    parser.add_argument("--log-level", default="INFO", help="the bot's LOG_LEVEL")
    args = parser.parse_args(argv)
    if args.hours < 5 / 60:
        parser.error("--hours must cover at least one 5m candle")
    return R3Config(
        hours=args.hours,
        seed=args.seed,
        exchange=args.exchange,
        workdir=args.workdir,
        log_level=args.log_level,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run R3 and print its figures; 0 when every check passed."""
    config = parse_args(argv)
    try:
        result = asyncio.run(run_r3(config))
    except HarnessError as exc:
        print(f"R3 failed: {exc}")
        return 1
    print(result.line())
    print(
        f"   {config.exchange}, seed {config.seed}, {result.decisions} decisions compared, "
        f"runs {result.seconds[0]:.0f} s (drops) and {result.seconds[1]:.0f} s (none)"
    )
    for problem in result.problems[:50]:
        print(f"   FAIL {problem}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
