"""The advisor end to end: real openai SDK → fake server on loopback → validation → audit rows
on SQLite and PostgreSQL. Every path ends accepted, repaired, rejected with reason, or fallen
back — with its audit row written."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from kmg_autotrader.advisor import AdvisorContext, AdvisorPipelineStage, apply_advice
from kmg_autotrader.domain import AdvisorAction, Candidate
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.vault import VaultKind, VaultReader
from tests.advisor.conftest import AdvisorFactory, good_answer
from tests.fakes.fake_llm_server import FakeLlmServer, answer, error, slow, text

pytestmark = pytest.mark.db
SECRET = "sk-test-secret-key-123"


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    yield lines
    logger.remove(sink)


def rows(repos: Repositories) -> list[dict[str, Any]]:
    return list(reversed(repos.advisor_calls.recent("paper", limit=100)))


async def test_valid_answer_is_accepted_and_audited(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    repos: Repositories,
    candidate: Candidate,
    context: AdvisorContext,
    clock: SimulatedClock,
    log_lines: list[str],
) -> None:
    sunk: list[dict[str, Any]] = []
    advisor = make_advisor(audit_sink=sunk.append)
    fake_llm.enqueue(answer(good_answer(candidate)))
    decision = await advisor.review(candidate, context)
    assert decision.valid and decision.action is AdvisorAction.BUY
    assert decision.confidence == 0.6 and decision.fallback is None
    assert decision.reasoning.startswith("Trend is up") and decision.risks
    [row] = rows(repos)
    assert row["id"] == decision.call_id and row["valid"] and row["fallback"] is None
    assert row["action"] == "buy" and row["confidence"] == 0.6 and row["errors"] == []
    assert row["prompt_version"].startswith("v1-") and len(row["prompt_hash"]) == 64
    assert "BTC/USDT" in row["prompt"] and json.loads(row["raw_answer"])["action"] == "buy"
    assert row["parsed"]["confidence"] == 0.6
    assert row["prompt_tokens"] == 100 and row["completion_tokens"] == 50
    assert row["cost_usd"] == pytest.approx((100 * 0.15 + 50 * 0.6) / 1e6)
    assert row["latency_ms"] is not None and row["created_at"] == clock.now_ms()
    assert row["timestamp"] == candidate.timestamp and row["model"] == "gpt-4o-mini"
    assert len(sunk) == 1 and sunk[0]["id"] == row["id"] and sunk[0]["valid"]
    request = fake_llm.requests[0]
    assert request["response_format"]["type"] == "json_schema"
    assert SECRET not in json.dumps(sunk) + "".join(log_lines) + json.dumps(advisor.status())
    adjusted, reason = apply_advice(candidate, decision, advisor.mode)
    assert adjusted is not None and adjusted.confidence == 0.6 and "agreed" in reason
    await advisor.aclose()


async def test_invalid_json_is_repaired(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    repos: Repositories,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    advisor = make_advisor()
    fake_llm.enqueue(text("Sure! I'd buy."), answer(good_answer(candidate)))
    decision = await advisor.review(candidate, context)
    assert decision.valid and decision.action is AdvisorAction.BUY
    repair_request = fake_llm.requests[1]["messages"]
    assert repair_request[-2] == {"role": "assistant", "content": "Sure! I'd buy."}
    assert "not valid JSON" in repair_request[-1]["content"]
    [row] = rows(repos)
    assert row["valid"] and row["repaired"] and row["fallback"] is None
    assert any("not valid JSON" in e for e in row["errors"])
    assert row["prompt_tokens"] == 200 and row["completion_tokens"] == 100


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"confidence": "0.8"}, "confidence"),
        ({"action": "strong_buy"}, "action"),
        ({"stop_loss": 99_999.0}, "more than 25% away"),
    ],
)
async def test_answer_rejected_after_one_repair(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    repos: Repositories,
    candidate: Candidate,
    context: AdvisorContext,
    bad: dict[str, Any],
    reason: str,
) -> None:
    advisor = make_advisor()
    wrong = good_answer(candidate, **bad)
    fake_llm.enqueue(answer(wrong), answer(wrong), answer(good_answer(candidate)))
    decision = await advisor.review(candidate, context)
    assert not decision.valid and decision.action is None and decision.confidence is None
    assert decision.fallback == "invalid_answer" and reason in (decision.error or "")
    assert len(fake_llm.requests) == 2  # the answer and exactly one repair attempt
    [row] = rows(repos)
    assert not row["valid"] and row["repaired"] and row["fallback"] == "invalid_answer"
    assert row["raw_answer"] and row["parsed"] == wrong
    assert any(reason in e for e in row["errors"]) and any(
        e.startswith("repair: ") for e in row["errors"]
    )
    assert apply_advice(candidate, decision, "advisory")[0] is candidate
    assert apply_advice(candidate, decision, "required")[0] is None


async def test_semantically_wrong_stop_is_rejected(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    repos: Repositories,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    advisor = make_advisor()
    wrong = good_answer(candidate, stop_loss=round(candidate.price * 1.005, 2))
    fake_llm.enqueue(answer(wrong), answer(wrong))
    decision = await advisor.review(candidate, context)
    assert decision.fallback == "invalid_answer" and "stop_loss < entry" in (decision.error or "")
    [row] = rows(repos)
    assert not row["valid"] and row["action"] is None


async def test_repair_that_fixes_semantics(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    advisor = make_advisor()
    wrong = good_answer(candidate, stop_loss=round(candidate.price * 1.005, 2))
    fake_llm.enqueue(answer(wrong), answer(good_answer(candidate)))
    decision = await advisor.review(candidate, context)
    assert decision.valid and "stop_loss < entry" in fake_llm.requests[1]["messages"][-1]["content"]


@pytest.mark.parametrize(
    "replies",
    [
        [error(429), error(429), error(429)],
        [error(500), error(502), error(503)],
        [slow(0.6), slow(0.6), slow(0.6)],
    ],
    ids=["429", "5xx", "slow"],
)
async def test_unreachable_falls_back(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    repos: Repositories,
    candidate: Candidate,
    context: AdvisorContext,
    replies: list[Any],
) -> None:
    advisor = make_advisor(llm_timeout_seconds=0.2)
    fake_llm.enqueue(*replies)
    decision = await advisor.review(candidate, context)
    assert not decision.valid and decision.fallback == "unreachable"
    assert "3 attempt" in (decision.error or "")
    [row] = rows(repos)
    assert row["fallback"] == "unreachable" and row["raw_answer"] is None and not row["valid"]
    assert advisor.status()["last_fallback"] == "unreachable"
    assert apply_advice(candidate, decision, "advisory")[0] is candidate
    assert apply_advice(candidate, decision, "required")[0] is None


async def test_transient_error_then_answer(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    advisor = make_advisor()
    fake_llm.enqueue(error(429), error(500), answer(good_answer(candidate)))
    assert (await advisor.review(candidate, context)).valid


async def test_permanent_error_is_not_retried(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    repos: Repositories,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    advisor = make_advisor()
    fake_llm.enqueue(error(400), answer(good_answer(candidate)))
    decision = await advisor.review(candidate, context)
    assert decision.fallback == "llm_error" and len(fake_llm.requests) == 1
    assert rows(repos)[0]["fallback"] == "llm_error"


async def test_refusal_is_rejected(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    advisor = make_advisor()
    refusal = dataclasses.replace(text("x"), content=None, refusal="I cannot help with trading.")
    fake_llm.enqueue(refusal, refusal)
    decision = await advisor.review(candidate, context)
    assert decision.fallback == "invalid_answer" and "refused" in (decision.error or "")


async def test_hourly_budget(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    repos: Repositories,
    candidate: Candidate,
    context: AdvisorContext,
    clock: SimulatedClock,
) -> None:
    advisor = make_advisor(gpt_call_limit_per_hour=2)
    fake_llm.default = answer(good_answer(candidate))
    assert (await advisor.review(candidate, context)).valid
    assert (await advisor.review(candidate, context)).valid
    over = await advisor.review(candidate, context)
    assert over.fallback == "budget_exhausted" and len(fake_llm.requests) == 2
    assert rows(repos)[-1]["fallback"] == "budget_exhausted"
    status = advisor.status()
    assert status["calls_last_hour"] == 2 and status["budget_per_hour"] == 2
    assert apply_advice(candidate, over, "required")[0] is None
    clock.set(clock.now_ms() + 3_600_000)  # the rolling hour moves on
    assert (await advisor.review(candidate, context)).valid


async def test_budget_holds_across_a_restart(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
    clock: SimulatedClock,
) -> None:
    fake_llm.default = answer(good_answer(candidate))
    first = make_advisor(gpt_call_limit_per_hour=2)
    for _ in range(2):
        assert (await first.review(candidate, context)).valid
    await first.aclose()
    clock.set(clock.now_ms() + 30 * 60_000)
    restarted = make_advisor(gpt_call_limit_per_hour=2)  # a new process: state only in the DB
    assert restarted.status()["calls_last_hour"] == 2
    assert (await restarted.review(candidate, context)).fallback == "budget_exhausted"
    assert len(fake_llm.requests) == 2
    clock.set(clock.now_ms() + 30 * 60_000)
    assert (await restarted.review(candidate, context)).valid


async def test_rejected_answers_count_towards_the_budget(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    advisor = make_advisor(gpt_call_limit_per_hour=1)
    fake_llm.default = text("nope")
    assert (await advisor.review(candidate, context)).fallback == "invalid_answer"
    assert (await advisor.review(candidate, context)).fallback == "budget_exhausted"


async def test_symbol_cooldown(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
    clock: SimulatedClock,
) -> None:
    advisor = make_advisor(advisor_symbol_cooldown_minutes=15)
    fake_llm.default = answer(good_answer(candidate))
    assert (await advisor.review(candidate, context)).valid
    again = await advisor.review(candidate, context)
    assert again.fallback == "cooldown" and "BTC/USDT" in (again.error or "")
    other = dataclasses.replace(candidate, symbol="ETH/USDT")
    other_answer = good_answer(other)
    fake_llm.enqueue(answer(other_answer))
    assert (await advisor.review(other, context)).valid
    clock.set(clock.now_ms() + 15 * 60_000)
    assert (await advisor.review(candidate, context)).valid
    assert len(fake_llm.requests) == 3


async def test_concurrent_reviews_respect_the_budget(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    advisor = make_advisor(gpt_call_limit_per_hour=1)
    fake_llm.default = slow(0.2, good_answer(candidate))
    other = dataclasses.replace(candidate, symbol="ETH/USDT")
    results = await asyncio.gather(
        advisor.review(candidate, context), advisor.review(other, context)
    )
    assert sorted(str(r.fallback) for r in results) == ["None", "budget_exhausted"]
    assert len(fake_llm.requests) == 1


async def test_off_mode_never_calls(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    repos: Repositories,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    advisor = make_advisor(advisor_mode="off")
    decision = await advisor.review(candidate, context)
    assert decision.fallback == "advisor_off" and not fake_llm.requests and not rows(repos)
    status = advisor.status()
    assert status["enabled"] is False and "off" in status["reason"]
    assert apply_advice(candidate, decision, advisor.mode)[0] is candidate


async def test_no_key_and_no_base_url_means_off(
    make_advisor: AdvisorFactory, repos: Repositories, candidate: Candidate, context: AdvisorContext
) -> None:
    # (ADVISOR_MODE=required without an LLM is refused by the settings: tests/foundation)
    advisor = make_advisor(openai_api_key=None, openai_base_url=None, advisor_mode="advisory")
    status = advisor.status()
    assert status["enabled"] is False and advisor.mode == "off"
    assert "OPENAI_API_KEY" in status["reason"] and status["configured_mode"] == "advisory"
    decision = await advisor.review(candidate, context)
    assert decision.fallback == "advisor_off" and not rows(repos)


async def test_replay_is_deterministic_and_free(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    repos: Repositories,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    live = make_advisor()
    fake_llm.enqueue(answer(good_answer(candidate, confidence=0.55)))
    recorded = await live.review(candidate, context)
    replay = make_advisor(replay=True, openai_api_key=None, openai_base_url=None)
    assert replay.status()["replay"] and replay.mode == "advisory"
    for _ in range(3):  # no budget, no cooldown, no LLM
        replayed = await replay.review(candidate, context)
        assert dataclasses.replace(replayed, call_id=None) == dataclasses.replace(
            recorded, call_id=None
        )
    assert len(fake_llm.requests) == 1
    # replayed calls stay out of the account's audit log (budget, dashboard): one row, live
    assert [r["model"] for r in rows(repos)] == ["gpt-4o-mini"]
    # a backtest has the same candles and candidate but not the live account: still a hit
    backtest_context = dataclasses.replace(context, risk_state={})
    assert (await replay.review(candidate, backtest_context)).confidence == 0.55
    unseen = dataclasses.replace(candidate, price=candidate.price + 5)
    miss = await replay.review(unseen, context)
    assert miss.fallback == "replay_miss" and not miss.valid


async def test_replay_of_a_rejected_answer_is_rejected_again(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    live = make_advisor()
    fake_llm.enqueue(text("buy!"), text("buy!!"))
    assert (await live.review(candidate, context)).fallback == "invalid_answer"
    replay = make_advisor(replay=True)
    decision = await replay.review(candidate, context)
    assert decision.fallback == "invalid_answer" and "replayed" in (decision.error or "")


async def test_broken_audit_sink_does_not_stop_the_advisor(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    repos: Repositories,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    def broken(record: dict[str, Any]) -> None:
        raise OSError("disk full")

    advisor = make_advisor(audit_sink=broken)
    fake_llm.enqueue(answer(good_answer(candidate)))
    assert (await advisor.review(candidate, context)).valid
    assert len(rows(repos)) == 1


async def test_json_object_mode_per_endpoint(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    advisor = make_advisor(llm_json_mode="json_object")
    fake_llm.enqueue(answer(good_answer(candidate)))
    assert (await advisor.review(candidate, context)).valid
    assert fake_llm.requests[0]["response_format"] == {"type": "json_object"}
    assert advisor.status()["json_mode"] == "json_object"


async def test_pipeline_stage_adapter(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    stage = AdvisorPipelineStage(make_advisor(), lambda _c: context)
    fake_llm.enqueue(answer(good_answer(candidate, action="hold")))
    decision = await stage.review(candidate)
    assert decision.action is AdvisorAction.HOLD
    assert stage.apply(candidate, decision, "advisory") is None
    off = AdvisorPipelineStage(make_advisor(openai_api_key=None, openai_base_url=None))
    abstained = await off.review(candidate)
    assert off.apply(candidate, abstained, "required") is candidate  # no endpoint: off


async def test_every_call_goes_to_the_jsonl_vault_and_links_its_signal(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    repos: Repositories,
    candidate: Candidate,
    context: AdvisorContext,
    tmp_path: Path,
) -> None:
    signal_id = repos.signals.add_candidate(
        "paper", candidate, passed=True, rejected_by=None
    )  # what the pipeline stores before it asks the advisor
    advisor = make_advisor(gpt_call_limit_per_hour=1)  # default sink: DATA_DIR/vault
    fake_llm.enqueue(answer(good_answer(candidate)))
    accepted = await advisor.review(candidate, context)
    over = await advisor.review(candidate, context)
    assert accepted.valid and over.fallback == "budget_exhausted"
    stored = rows(repos)
    assert [r["signal_id"] for r in stored] == [signal_id, signal_id]
    vaulted = [e["data"] for e in VaultReader(tmp_path / "data").read(VaultKind.ADVISOR_CALLS)]
    assert [v["id"] for v in vaulted] == [r["id"] for r in stored]
    first, second = vaulted
    assert first["valid"] and first["action"] == "buy" and first["fallback"] is None
    assert first["prompt"] == stored[0]["prompt"] and first["raw_answer"] == stored[0]["raw_answer"]
    assert first["prompt_version"].startswith("v1-") and first["latency_ms"] is not None
    assert first["prompt_tokens"] == 100 and first["cost_usd"] and first["signal_id"] == signal_id
    assert second["fallback"] == "budget_exhausted" and second["errors"]
    assert SECRET not in json.dumps(vaulted)
    await advisor.aclose()
