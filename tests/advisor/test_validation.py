"""Validation of raw answers: JSON, schema, typed model, semantics. No decision from free text."""

from __future__ import annotations

import json
import re

import jsonschema

from kmg_autotrader.advisor.schema import answer_schema, gbnf_grammar, strict_schema
from kmg_autotrader.advisor.validation import validate_answer
from kmg_autotrader.domain import Candidate
from tests.advisor.conftest import good_answer


def test_schema_file_is_shipped_and_valid() -> None:
    schema = answer_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert next(iter(schema["properties"])) == "reasoning"  # reasoning comes before the decision
    assert set(schema["required"]) == {"reasoning", "action", "confidence"}


def test_strict_variant_requires_every_property() -> None:
    strict = strict_schema()
    assert strict["required"] == list(strict["properties"])
    assert strict["additionalProperties"] is False
    assert "minimum" not in json.dumps(strict)


def test_good_answer_is_accepted(candidate: Candidate) -> None:
    result = validate_answer(json.dumps(good_answer(candidate)), candidate)
    assert result.ok and result.schema_valid and result.errors == ()
    assert result.answer is not None and result.answer.action == "buy"


def test_minimal_answer_is_accepted(candidate: Candidate) -> None:
    raw = json.dumps({"reasoning": "weak trend", "action": "hold", "confidence": 0.3})
    assert validate_answer(raw, candidate).ok


def test_not_json_is_rejected(candidate: Candidate) -> None:
    result = validate_answer("I think you should buy, confidence high.", candidate)
    assert not result.ok and not result.schema_valid
    assert "not valid JSON" in result.errors[0]


def test_markdown_fenced_json_is_not_unwrapped(candidate: Candidate) -> None:
    raw = "```json\n" + json.dumps(good_answer(candidate)) + "\n```"
    assert not validate_answer(raw, candidate).ok


def test_confidence_as_string_is_rejected(candidate: Candidate) -> None:
    result = validate_answer(json.dumps(good_answer(candidate, confidence="0.8")), candidate)
    assert not result.ok and not result.schema_valid
    assert "confidence" in result.errors[0]


def test_nan_is_rejected(candidate: Candidate) -> None:
    raw = json.dumps(good_answer(candidate)).replace('"confidence": 0.6', '"confidence": NaN')
    result = validate_answer(raw, candidate)
    assert not result.ok and "not valid JSON" in result.errors[0]


def test_unknown_action_and_extra_keys_are_rejected(candidate: Candidate) -> None:
    result = validate_answer(json.dumps(good_answer(candidate, action="short")), candidate)
    assert not result.schema_valid
    result = validate_answer(json.dumps(good_answer(candidate, leverage=10)), candidate)
    assert not result.schema_valid


def test_stop_above_entry_is_a_semantic_error(candidate: Candidate) -> None:
    body = good_answer(candidate, stop_loss=round(candidate.price * 1.01, 2))
    result = validate_answer(json.dumps(body), candidate)
    assert result.schema_valid and not result.ok
    assert any("stop_loss < entry" in e for e in result.errors)


def test_levels_far_from_the_price_are_rejected(candidate: Candidate) -> None:
    body = good_answer(candidate, take_profit=candidate.price * 2)
    result = validate_answer(json.dumps(body), candidate)
    assert any("more than 25% away" in e for e in result.errors)
    body = good_answer(candidate, entry=candidate.price * 1.1)
    result = validate_answer(json.dumps(body), candidate)
    assert any("entry" in e and "3% away" in e for e in result.errors)


def test_no_answer(candidate: Candidate) -> None:
    assert validate_answer(None, candidate).errors == ("no answer",)
    assert validate_answer("  ", candidate).errors == ("empty answer",)


def test_grammar_variants() -> None:
    full, verdict_only = gbnf_grammar(), gbnf_grammar(levels=False)
    assert "stop_loss" in full and "stop_loss" not in verdict_only
    assert verdict_only.startswith("root ::=") and "LEVELS" not in full + verdict_only


def test_a_veto_is_not_rejected_for_its_levels(candidate: Candidate) -> None:
    body = good_answer(candidate, action="sell", stop_loss=round(candidate.price * 1.01, 2))
    result = validate_answer(json.dumps(body), candidate)
    assert result.ok and result.answer is not None and result.answer.action == "sell"


def test_integral_float_horizon_is_accepted(candidate: Candidate) -> None:
    result = validate_answer(json.dumps(good_answer(candidate, horizon_minutes=120.0)), candidate)
    assert result.ok and result.answer is not None and result.answer.horizon_minutes == 120


def test_grammar_has_no_large_bounded_repetitions() -> None:
    # llama.cpp expands x{m,n} into one rule per step, which made each sampled token slow;
    # lengths are enforced by max_tokens and our validation instead.
    for grammar in (gbnf_grammar(), gbnf_grammar(levels=False)):
        assert re.search(r"\{\d*,?\d*\}", grammar) is None
        assert 'text ::= "\\"" char+ "\\""' in grammar
