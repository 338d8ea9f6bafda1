"""Risk parameters: validation, defaults from settings, versioned runtime changes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kmg_autotrader.config import Settings, load_settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.risk import (
    DbRiskStateStore,
    RiskManager,
    RiskParams,
    RiskParamsError,
    RiskParamsStore,
    env_sources,
)
from kmg_autotrader.risk.params import param_decimals
from kmg_autotrader.storage.repositories import Repositories


def test_defaults_follow_the_template() -> None:
    params = RiskParams.from_settings(Settings())
    assert params.max_position_percent == 0.2
    assert params.max_drawdown_percent == 5.0
    assert params.cooldown_after_loss_minutes >= params.cooldown_minutes


def test_kraken_profile_settings() -> None:
    params = RiskParams.from_settings(Settings(max_position_percent=0.1, max_drawdown=8))
    assert params.max_position_percent == 0.1
    assert params.max_drawdown_percent == 8.0


def test_a_full_position_cap_setting_still_builds_valid_params() -> None:
    params = RiskParams.from_settings(Settings(max_position_percent=1.0))
    assert params.max_total_exposure_percent == 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_position_percent", 0),
        ("max_position_percent", 1.01),
        ("risk_per_trade_percent", 0),
        ("max_open_positions", 0),
        ("max_open_positions", 2.5),
        ("cooldown_minutes", -1),
        ("max_drawdown_percent", 101),
        ("daily_loss_limit_percent", 0),
        ("max_trades_per_day", 0),
        ("slippage_bps", -0.1),
        ("fee_safety_margin", 0.5),
        ("flatten_on_daily_loss", "maybe"),
    ],
)
def test_out_of_range_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises(RiskParamsError) as caught:
        RiskParamsStore(None, RiskParams()).update({field: value}, source="test")
    assert [e["field"] for e in caught.value.errors] == [field]


def test_range_edges_are_accepted() -> None:
    store = RiskParamsStore(None, RiskParams())
    _, params = store.update(
        {"max_position_percent": 0.8, "max_drawdown_percent": 100, "cooldown_minutes": 0},
        source="test",
    )
    assert params.max_position_percent == 0.8


def test_cooldown_after_loss_must_not_be_shorter() -> None:
    store = RiskParamsStore(None, RiskParams())
    store.update({"cooldown_minutes": 60, "cooldown_after_loss_minutes": 60}, source="t")
    with pytest.raises(RiskParamsError) as caught:
        store.update({"cooldown_after_loss_minutes": 59}, source="t")
    assert caught.value.errors[0]["field"] == "cooldown_after_loss_minutes"
    assert ">= cooldown_minutes" in caught.value.errors[0]["message"]


def test_position_cap_must_fit_the_exposure_cap() -> None:
    store = RiskParamsStore(None, RiskParams())
    with pytest.raises(RiskParamsError) as caught:
        store.update({"max_position_percent": 0.9, "max_total_exposure_percent": 0.5}, source="t")
    assert caught.value.errors[0]["field"] == "max_position_percent"


def test_an_invalid_change_is_refused_whole_with_every_error() -> None:
    store = RiskParamsStore(None, RiskParams())
    with pytest.raises(RiskParamsError) as caught:
        store.update(
            {"max_position_percent": 0.1, "max_open_positions": -1, "slippage_bps": "x", "nope": 1},
            source="t",
        )
    fields = sorted(e["field"] for e in caught.value.errors)
    assert fields == ["max_open_positions", "nope", "slippage_bps"]
    assert all(e["message"] for e in caught.value.errors)
    version, params = store.current()
    assert version == 0 and params.max_position_percent == 0.2  # the valid part is not applied


def test_unknown_field_alone_is_refused() -> None:
    store = RiskParamsStore(None, RiskParams())
    with pytest.raises(RiskParamsError) as caught:
        store.update({"max_leverage": 3}, source="t")
    assert caught.value.errors == [{"field": "max_leverage", "message": "unknown risk parameter"}]


def test_in_memory_versions_and_history() -> None:
    store = RiskParamsStore(None, RiskParams())
    assert store.current() == (0, RiskParams())
    store.update({"max_open_positions": 5}, source="cli", comment="more")
    version, params = store.update({"cooldown_minutes": 10}, source="webui")
    assert version == 2
    assert params.max_open_positions == 5 and params.cooldown_minutes == 10
    history = store.history()
    assert [h["version"] for h in history] == [2, 1]
    assert history[1]["source"] == "cli" and history[1]["comment"] == "more"


@pytest.mark.db
def test_versions_are_stored_with_time_and_source(repos: Repositories) -> None:
    store = RiskParamsStore(repos.risk_params, RiskParams())
    assert store.current() == (0, RiskParams())
    store.update({"max_position_percent": 0.1}, source="webui:PUT /risk", comment="kraken")
    with pytest.raises(RiskParamsError):
        store.update({"max_position_percent": 2}, source="webui")
    store.update({"max_open_positions": 2}, source="cli")
    fresh = RiskParamsStore(repos.risk_params, RiskParams())  # after a restart
    version, params = fresh.current()
    assert version == 2
    assert params.max_position_percent == 0.1 and params.max_open_positions == 2
    history = fresh.history()
    assert [(h["version"], h["source"]) for h in history] == [(2, "cli"), (1, "webui:PUT /risk")]
    assert history[1]["comment"] == "kraken" and history[1]["created_at"] > 0
    assert history[0]["params"]["max_position_percent"] == 0.1


@pytest.mark.db
def test_stored_params_miss_new_fields_get_defaults(repos: Repositories) -> None:
    repos.risk_params.add(Mode.PAPER, {"max_open_positions": 4}, source="old version")
    version, params = RiskParamsStore(repos.risk_params, RiskParams()).current()
    assert version == 1 and params.max_open_positions == 4
    assert params.max_position_percent == 0.2


def test_param_decimals_are_the_printed_floats_once_per_params_object() -> None:
    params = RiskParams(slippage_bps=7.5, fee_safety_margin=-0.0, stake_amount=100)
    decimals = param_decimals(params)
    assert param_decimals(params) is decimals  # converted once
    assert decimals.slippage_bps == Decimal("7.5")
    assert str(decimals.fee_safety_margin) == "-0.0"  # as Decimal(str(value)): sign kept
    assert decimals.stake_amount == Decimal("100.0")
    assert param_decimals(RiskParams()).stake_amount is None
    # an equal but distinct object (another version) is converted from its own values
    other = RiskParams(slippage_bps=7.5, fee_safety_margin=0.0, stake_amount=100)
    assert str(param_decimals(other).fee_safety_margin) == "0.0"
    for name in ("max_position_percent", "risk_per_trade_percent", "max_drawdown_percent"):
        assert getattr(decimals, name) == Decimal(str(getattr(params, name)))


@pytest.mark.db
def test_a_paper_edit_does_not_change_live_limits(repos: Repositories) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    paper = RiskParamsStore.from_settings(repos.risk_params, settings, Mode.PAPER)
    live = RiskParamsStore.from_settings(repos.risk_params, settings, Mode.LIVE)
    paper.update({"max_drawdown_percent": 30.0}, source="web:session", comment="experiment")
    assert paper.current()[1].max_drawdown_percent == 30.0
    assert live.current() == (0, RiskParams.from_settings(settings))
    assert live.history() == []
    assert live.update({"max_open_positions": 1}, source="web:token")[0] == 1
    assert [h["version"] for h in paper.history()] == [1]


@pytest.mark.db
def test_env_applies_until_an_edit_of_that_mode_then_the_edit_wins_and_says_so(
    repos: Repositories, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAX_POSITION_PERCENT", raising=False)
    monkeypatch.setenv("MAX_DRAWDOWN", "8")
    settings = load_settings(None)
    assert env_sources(settings) == {"max_drawdown_percent": "MAX_DRAWDOWN"}
    store = RiskParamsStore.from_settings(repos.risk_params, settings, Mode.LIVE)
    sources = {v.name: v for v in store.effective().values}
    assert (sources["max_drawdown_percent"].value, sources["max_drawdown_percent"].source) == (
        8.0,
        ".env (MAX_DRAWDOWN)",
    )
    assert sources["max_open_positions"].source == "default"
    store.update({"max_open_positions": 2}, source="web:session")
    effective = store.effective()
    assert effective.mode is Mode.LIVE and effective.version == 1
    label = effective.values[0].source
    assert label.startswith("dashboard edit v1 at ") and label.endswith("Z")
    assert {v.source for v in effective.values} == {label}  # the stored version holds them all
    # the owner later changes .env: the stored edit still wins, and says what it overrides
    monkeypatch.setenv("MAX_DRAWDOWN", "9")
    later = RiskParamsStore.from_settings(repos.risk_params, load_settings(None), Mode.LIVE)
    drawdown = {v.name: v for v in later.effective().values}["max_drawdown_percent"]
    assert drawdown.value == 8.0 and drawdown.source == label
    assert (drawdown.setting, drawdown.overrides) == ("MAX_DRAWDOWN", 9.0)
    # PAPER has no edit: .env applies there
    paper = RiskParamsStore.from_settings(repos.risk_params, load_settings(None), Mode.PAPER)
    assert paper.current()[1].max_drawdown_percent == 9.0


@pytest.mark.db
def test_a_store_without_a_mode_reads_and_writes_its_managers_mode(repos: Repositories) -> None:
    RiskParamsStore(repos.risk_params, RiskParams(), mode=Mode.PAPER).update(
        {"max_open_positions": 9}, source="web:session"
    )
    unscoped = RiskParamsStore(repos.risk_params, RiskParams())  # as the bot's wiring builds it
    RiskManager(
        mode=Mode.LIVE,
        params=unscoped,
        state=DbRiskStateStore(repos.risk_state, Mode.LIVE),
        decisions=None,
        clock=SimulatedClock(0),
    )
    assert unscoped.mode is Mode.LIVE and unscoped.current() == (0, RiskParams())
    unscoped.update({"max_open_positions": 1}, source="web:token")
    assert repos.risk_params.latest(Mode.LIVE)["params"]["max_open_positions"] == 1
    assert repos.risk_params.latest(Mode.PAPER)["params"]["max_open_positions"] == 9
    with pytest.raises(ValueError, match="risk parameters of live given to a paper bot"):
        RiskManager(
            mode=Mode.PAPER,
            params=unscoped,
            state=DbRiskStateStore(repos.risk_state, Mode.PAPER),
            decisions=None,
            clock=SimulatedClock(0),
        )
