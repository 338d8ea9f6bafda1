"""The bot's ``version_changes`` and ``anomalies`` vault records (issue 18, item 14): written
by the real wiring over the test database, read back with the vault reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmg_autotrader import __version__
from kmg_autotrader.domain import Mode
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.vault import VaultReader

from .conftest import T0, make_runtime


def _records(data: Path, kind: str) -> list[dict[str, object]]:
    return [r["data"] for r in VaultReader(data).read(kind)]


@pytest.mark.db
async def test_versions_are_recorded_at_start_and_when_they_change(
    repos: Repositories, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = make_runtime(repos, data)
    await first.start()
    try:
        (record,) = _records(data, "version_changes")
        assert record["reason"] == "start" and record["previous"] is None
        versions = record["versions"]
        assert isinstance(versions, dict)
        assert versions["app"] == __version__ and versions["mode"] == "paper"
        assert versions["strategy"] == "default" and versions["risk_params_version"] == 0
        # a risk-limit edit while the bot runs (the dashboard's) is seen with the next snapshot
        first.params.update({"max_open_positions": 2}, source="web:test")
        await first.bot.jobs.tick()
        changed = _records(data, "version_changes")[-1]
        assert changed["changed"] == ["risk_params_version"], changed
    finally:
        await first.stop()
    # a restart with the same versions writes nothing new
    second = make_runtime(repos, data, T0 + 60_000)
    await second.start()
    await second.bot.jobs.tick()
    await second.stop()
    assert len(_records(data, "version_changes")) == 2


@pytest.mark.db
async def test_warning_and_error_events_are_kept_as_anomalies(
    repos: Repositories, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    runtime = make_runtime(repos, data)
    try:
        # the bot's own error path (what a failed candle or order handling calls)
        runtime.bot._error("BTC/USDT candle 123: boom")
        repos.events.add(Mode.PAPER, "data_gap", "candles missing", level="warning", created_at=T0)
        repos.events.add(Mode.PAPER, "ws_connected", "stream up", level="info")
        repos.events.add(Mode.LIVE, "error", "the other mode's", level="error")
    finally:
        await runtime.stop()
    repos.events.add(Mode.PAPER, "error", "after the bot stopped", level="error")
    anomalies = _records(data, "anomalies")  # filed by the events' own times
    found = {(a["kind"], a["level"], a["message"]) for a in anomalies}
    assert found == {
        ("error", "error", "BTC/USDT candle 123: boom"),
        ("data_gap", "warning", "candles missing"),
    }
    assert all(a["mode"] == "paper" and a["event_id"] for a in anomalies)
