"""GPT_CALL_LIMIT_PER_HOUR and the per-symbol cooldown count every HTTP request that left —
retries, repairs and calls that got no answer too — so a dead or hanging server is not asked
again on every candidate (issue 18 item 8). Real openai SDK against the fake server on loopback;
the server's own request count is the truth."""

from __future__ import annotations

import dataclasses

import pytest

from kmg_autotrader.advisor import AdvisorContext
from kmg_autotrader.domain import Candidate
from kmg_autotrader.domain.clock import SimulatedClock
from tests.advisor.conftest import AdvisorFactory, good_answer
from tests.fakes.fake_llm_server import FakeLlmServer, answer, error, slow, text

pytestmark = pytest.mark.db
CANDIDATES = 6  # x 3 attempts each = the 18 requests seen against a budget of 2


def symbols(candidate: Candidate, n: int) -> list[Candidate]:
    """``n`` candidates on different symbols (so no cooldown applies between them)."""
    return [dataclasses.replace(candidate, symbol=f"C{i}/USDT") for i in range(n)]


@pytest.mark.parametrize("dead", ["http_500", "hang"])
async def test_a_dead_or_hanging_server_gets_no_more_requests_than_the_budget(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
    dead: str,
) -> None:
    fake_llm.default = error(500) if dead == "http_500" else slow(2.0)
    advisor = make_advisor(gpt_call_limit_per_hour=2, llm_timeout_seconds=0.2)
    fallbacks = [
        (await advisor.review(c, context)).fallback for c in symbols(candidate, CANDIDATES)
    ]
    assert len(fake_llm.requests) == 2  # 18 before the fix
    assert fallbacks[0] == "budget_exhausted"  # its third attempt was refused
    assert fallbacks[1:] == ["budget_exhausted"] * (CANDIDATES - 1)
    assert advisor.status()["calls_last_hour"] == 2


async def test_failed_calls_start_the_symbol_cooldown(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
    clock: SimulatedClock,
) -> None:
    fake_llm.default = error(500)
    advisor = make_advisor(gpt_call_limit_per_hour=100, advisor_symbol_cooldown_minutes=15)
    assert (await advisor.review(candidate, context)).fallback == "unreachable"
    assert len(fake_llm.requests) == 3
    again = await advisor.review(candidate, context)
    assert again.fallback == "cooldown" and len(fake_llm.requests) == 3  # 6 before the fix
    other = dataclasses.replace(candidate, symbol="ETH/USDT")
    assert (await advisor.review(other, context)).fallback == "unreachable"
    assert len(fake_llm.requests) == 6
    clock.set(clock.now_ms() + 15 * 60_000)
    fake_llm.enqueue(answer(good_answer(candidate)))
    assert (await advisor.review(candidate, context)).valid


async def test_repair_requests_count_towards_the_budget(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
) -> None:
    fake_llm.default = text("not json")  # every answer needs a repair request
    advisor = make_advisor(gpt_call_limit_per_hour=3)
    for _ in range(3):
        await advisor.review(candidate, context)
    assert len(fake_llm.requests) == 3  # 4 before the fix (two reviews, each with a repair)
    assert advisor.status()["calls_last_hour"] == 3


async def test_answered_calls_are_not_counted_twice(
    make_advisor: AdvisorFactory,
    fake_llm: FakeLlmServer,
    candidate: Candidate,
    context: AdvisorContext,
    clock: SimulatedClock,
) -> None:
    # one answered call (in the audit log and in this process's own count) plus one failed one
    advisor = make_advisor(gpt_call_limit_per_hour=2)
    fake_llm.enqueue(answer(good_answer(candidate)))
    assert (await advisor.review(candidate, context)).valid
    assert advisor.status()["calls_last_hour"] == 1
    fake_llm.default = error(500)
    assert (await advisor.review(candidate, context)).fallback == "budget_exhausted"
    assert len(fake_llm.requests) == 2
    assert advisor.status()["calls_last_hour"] == 2
    clock.set(clock.now_ms() + 3_600_000)  # the rolling hour moves on: asked again
    assert advisor.status()["calls_last_hour"] == 0
    assert (await advisor.review(candidate, context)).fallback == "budget_exhausted"
    assert len(fake_llm.requests) == 4
