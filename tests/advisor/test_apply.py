"""apply_advice: the advice can veto, lower confidence and move levels within bounds, by mode."""

from __future__ import annotations

import dataclasses

import pytest

from kmg_autotrader.advisor import apply_advice
from kmg_autotrader.advisor.service import abstain
from kmg_autotrader.domain import AdvisorAction, AdvisorDecision, Candidate, Side


def agree(candidate: Candidate, **kwargs: float | None) -> AdvisorDecision:
    values: dict = {"confidence": 0.5}
    values.update(kwargs)
    return AdvisorDecision(valid=True, action=AdvisorAction.BUY, **values)


def test_off_keeps_the_rule_decision(candidate: Candidate) -> None:
    adjusted, reason = apply_advice(candidate, abstain("advisor_off"), "off")
    assert adjusted is candidate and "off" in reason


@pytest.mark.parametrize("fallback", ["budget_exhausted", "unreachable", "invalid_answer"])
def test_abstention_by_mode(candidate: Candidate, fallback: str) -> None:
    decision = abstain(fallback, "why")
    adjusted, reason = apply_advice(candidate, decision, "advisory")
    assert adjusted is candidate and fallback in reason and "stands" in reason
    adjusted, reason = apply_advice(candidate, decision, "required")
    assert adjusted is None and fallback in reason and "no trade" in reason


@pytest.mark.parametrize("action", [AdvisorAction.HOLD, AdvisorAction.SELL])
def test_veto(candidate: Candidate, action: AdvisorAction) -> None:
    decision = AdvisorDecision(valid=True, action=action, confidence=0.9)
    for mode in ("advisory", "required"):
        adjusted, reason = apply_advice(candidate, decision, mode)
        assert adjusted is None and "vetoed" in reason


def test_confidence_is_only_ever_lowered(candidate: Candidate) -> None:
    adjusted, _ = apply_advice(candidate, agree(candidate, confidence=0.4), "advisory")
    assert adjusted is not None and adjusted.confidence == 0.4
    adjusted, _ = apply_advice(candidate, agree(candidate, confidence=0.99), "advisory")
    assert adjusted is not None and adjusted.confidence == candidate.confidence


def test_stop_can_tighten_but_never_widen(candidate: Candidate) -> None:
    price = candidate.price
    assert candidate.stop_loss is not None
    tighter = price * 0.995
    adjusted, reason = apply_advice(candidate, agree(candidate, stop_loss=tighter), "required")
    assert adjusted is not None and adjusted.stop_loss == pytest.approx(tighter)
    wider = price * 0.95
    adjusted, reason = apply_advice(candidate, agree(candidate, stop_loss=wider), "advisory")
    assert adjusted is not None and adjusted.stop_loss == pytest.approx(candidate.stop_loss)
    very_tight = price * 0.9999  # less than half the rule's distance: clamped to half
    adjusted, reason = apply_advice(candidate, agree(candidate, stop_loss=very_tight), "advisory")
    assert adjusted is not None
    assert adjusted.stop_loss == pytest.approx(price - 0.5 * (price - candidate.stop_loss))
    assert "->" in reason


def test_target_moves_within_bounds(candidate: Candidate) -> None:
    price = candidate.price
    assert candidate.take_profit is not None
    rule_distance = candidate.take_profit - price
    far = price * 1.2
    adjusted, _ = apply_advice(candidate, agree(candidate, take_profit=far), "advisory")
    assert adjusted is not None
    assert adjusted.take_profit == pytest.approx(price + 1.5 * rule_distance)


def test_levels_set_when_the_rule_has_none(candidate: Candidate) -> None:
    bare = dataclasses.replace(candidate, stop_loss=None, take_profit=None)
    decision = agree(bare, stop_loss=bare.price * 0.99, take_profit=bare.price * 0.98)
    adjusted, _ = apply_advice(bare, decision, "advisory")
    assert adjusted is not None
    assert adjusted.stop_loss == pytest.approx(bare.price * 0.99)
    assert adjusted.take_profit is None  # below the price: not a target for a long


def test_sell_candidate_levels_untouched(candidate: Candidate) -> None:
    sell = dataclasses.replace(candidate, side=Side.SELL, stop_loss=None, take_profit=None)
    decision = AdvisorDecision(
        valid=True, action=AdvisorAction.SELL, confidence=0.8, stop_loss=sell.price * 1.01
    )
    adjusted, reason = apply_advice(sell, decision, "required")
    assert adjusted is not None and adjusted.stop_loss is None and "agreed" in reason


def test_replay_mode_applies_like_advisory(candidate: Candidate) -> None:
    adjusted, _ = apply_advice(candidate, abstain("replay_miss"), "replay")
    assert adjusted is candidate
