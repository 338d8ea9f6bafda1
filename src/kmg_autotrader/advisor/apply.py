"""How an advisor decision changes a candidate, by advisor mode. The advice can only make a
trade smaller or safer: veto it, lower its confidence, tighten its stop, move its target within
bounds. It never raises confidence and never goes around the risk manager."""

from __future__ import annotations

import dataclasses
from typing import Literal

from kmg_autotrader.domain import AdvisorAction, AdvisorDecision, Candidate, Side

AdvisorModeName = Literal["off", "advisory", "required"]

#: The advised stop may sit between these fractions of the rule's stop distance (never wider).
STOP_DISTANCE_BOUNDS = (0.5, 1.0)
#: The advised target may sit between these fractions of the rule's target distance.
TARGET_DISTANCE_BOUNDS = (0.5, 1.5)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _bounded_level(
    price: float,
    rule_level: float | None,
    advised: float | None,
    bounds: tuple[float, float],
    *,
    below: bool,
) -> tuple[float | None, str | None]:
    """The advised level kept within ``bounds`` × the rule's distance from ``price``; with no
    rule level, the advised one is taken if it is on the right side (``below`` the price)."""
    if advised is None:
        return rule_level, None
    if rule_level is None:
        if (advised < price) == below and advised != price:
            return advised, f"{advised:g} (set by advisor)"
        return None, None
    rule_distance = abs(price - rule_level)
    if rule_distance == 0:
        return rule_level, None
    direction = 1.0 if rule_level > price else -1.0
    advised_distance = (advised - price) * direction
    if advised_distance <= 0:  # wrong side of the price: keep the rule's level
        return rule_level, None
    kept = _clamp(advised_distance, bounds[0] * rule_distance, bounds[1] * rule_distance)
    level = price + direction * kept
    if abs(level - rule_level) < 1e-12:
        return rule_level, None
    note = f"{advised:g} -> {level:g}" if kept != advised_distance else f"{level:g}"
    return level, note


def apply_advice(
    candidate: Candidate, decision: AdvisorDecision, advisor_mode: str
) -> tuple[Candidate | None, str]:
    """The candidate after the advice in ``advisor_mode`` (``off`` | ``advisory`` |
    ``required``), or None when the advice stops the trade; plus the reason in words.

    Pass :attr:`Advisor.mode` (the effective mode: ``off`` when the advisor has no endpoint).
    ``replay`` (recorded answers) is applied like ``advisory``.
    """
    if advisor_mode == "replay":
        advisor_mode = "advisory"
    if advisor_mode == "off":
        return candidate, "advisor off: rule decision stands"
    if not decision.valid or decision.action is None:
        why = decision.fallback or "no answer"
        if decision.error:
            why = f"{why}: {decision.error}"
        if advisor_mode == "required":
            return None, f"advisor required but abstained ({why}): no trade"
        return candidate, f"advisor abstained ({why}): rule decision stands"
    wanted = AdvisorAction.BUY if candidate.side is Side.BUY else AdvisorAction.SELL
    if decision.action is not wanted:
        shown = "n/a" if decision.confidence is None else f"{decision.confidence:.2f}"
        return None, (
            f"advisor vetoed: answered {decision.action.value} to a {candidate.side.value} "
            f"candidate (confidence {shown})"
        )
    notes: list[str] = []
    confidence = candidate.confidence
    if decision.confidence is not None and decision.confidence < confidence:
        confidence = decision.confidence
        notes.append(f"confidence {candidate.confidence:.2f} -> {confidence:.2f}")
    stop, take = candidate.stop_loss, candidate.take_profit
    if candidate.side is Side.BUY:  # a spot sell closes a long: its levels do not apply
        stop, stop_note = _bounded_level(
            candidate.price,
            candidate.stop_loss,
            decision.stop_loss,
            STOP_DISTANCE_BOUNDS,
            below=True,
        )
        take, take_note = _bounded_level(
            candidate.price,
            candidate.take_profit,
            decision.take_profit,
            TARGET_DISTANCE_BOUNDS,
            below=False,
        )
        if stop_note:
            notes.append(f"stop_loss {stop_note}")
        if take_note:
            notes.append(f"take_profit {take_note}")
    adjusted = dataclasses.replace(
        candidate, confidence=confidence, stop_loss=stop, take_profit=take
    )
    summary = "; ".join(notes) if notes else "no change"
    return adjusted, f"advisor agreed ({summary})"
