"""Validation of a raw LLM answer: strict JSON, the JSON schema, the pydantic model, then
semantic checks against the candidate. Free text is never searched for a decision."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jsonschema
from pydantic import ValidationError

from kmg_autotrader.advisor.schema import AdvisorAnswer, answer_schema
from kmg_autotrader.domain import Candidate

#: How far (fraction of the last price) a suggested entry may be from the last price.
MAX_ENTRY_DISTANCE = 0.03
#: How far a suggested stop or target may be from the last price.
MAX_LEVEL_DISTANCE = 0.25


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """Outcome of validating one raw answer.

    ``schema_valid``: the text is one JSON object that passes the schema and the typed model.
    ``answer`` is set only when every check passed (schema and semantics).
    """

    answer: AdvisorAnswer | None
    parsed: dict[str, Any] | None
    schema_valid: bool
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when the answer can be used."""
        return self.answer is not None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    text = raw.strip()
    if not text:
        return None, "empty answer"
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        return None, f"not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    return value, None


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(answer_schema())


def _schema_errors(value: dict[str, Any]) -> list[str]:
    errors = sorted(_validator().iter_errors(value), key=lambda e: list(e.absolute_path))
    out = []
    for error in errors[:5]:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        out.append(f"schema: {where}: {error.message}")
    return out


def semantic_errors(answer: AdvisorAnswer, candidate: Candidate) -> list[str]:
    """Checks the schema cannot express: level ordering and distance from the last price."""
    errors: list[str] = []
    last = candidate.price
    if not (math.isfinite(last) and last > 0):
        return [f"semantic: candidate price {last!r} is unusable"]
    levels = {
        "entry": (answer.entry, MAX_ENTRY_DISTANCE),
        "stop_loss": (answer.stop_loss, MAX_LEVEL_DISTANCE),
        "take_profit": (answer.take_profit, MAX_LEVEL_DISTANCE),
    }
    for name, (value, limit) in levels.items():
        if value is not None and abs(value - last) / last > limit:
            errors.append(
                f"semantic: {name} {value:g} is more than {limit:.0%} away from the last "
                f"price {last:g}"
            )
    # Levels are only ever applied to a long entry (spot: a sell closes a long, hold and an
    # opposite action are vetoes), so only a buy answer must order them.
    if answer.action != "buy":
        return errors
    entry = answer.entry if answer.entry is not None else last
    stop, target = answer.stop_loss, answer.take_profit
    if stop is not None and not stop < entry:
        errors.append(f"semantic: buy needs stop_loss < entry, got {stop:g} >= {entry:g}")
    if target is not None and not entry < target:
        errors.append(f"semantic: buy needs entry < take_profit, got {entry:g} >= {target:g}")
    return errors


def validate_answer(raw: str | None, candidate: Candidate) -> ValidationResult:
    """Validate ``raw`` for ``candidate``: JSON, schema, typed model, semantics."""
    if raw is None:
        return ValidationResult(None, None, False, ("no answer",))
    value, error = _parse_json(raw)
    if value is None:
        return ValidationResult(None, None, False, (error or "not JSON",))
    schema_errors = _schema_errors(value)
    if schema_errors:
        return ValidationResult(None, value, False, tuple(schema_errors))
    try:
        answer = AdvisorAnswer.model_validate(value)
    except ValidationError as exc:
        msgs = [
            f"model: {'/'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"
            for e in exc.errors()[:5]
        ]
        return ValidationResult(None, value, False, tuple(msgs))
    sem = semantic_errors(answer, candidate)
    if sem:
        return ValidationResult(None, value, True, tuple(sem))
    return ValidationResult(answer, value, True, ())
