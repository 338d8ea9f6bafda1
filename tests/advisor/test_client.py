"""LlmClient with the real openai SDK against the fake server: JSON forcing, retries, timeouts."""

from __future__ import annotations

import time

import pytest

from kmg_autotrader.advisor.client import JsonMode, LlmClient, LlmUnavailable
from tests.fakes.fake_llm_server import FakeLlmServer, error, slow, text

MESSAGES = [{"role": "user", "content": "hi"}]


def client(server: FakeLlmServer, json_mode: JsonMode = "json_schema", **kw: float) -> LlmClient:
    options = {"timeout_s": 1.0, "retry_wait_s": 0.0, "max_attempts": 3, **kw}
    return LlmClient(
        base_url=server.base_url, api_key="sk-x", model="m", json_mode=json_mode, **options
    )


@pytest.mark.parametrize(
    ("mode", "key", "expected"),
    [
        ("json_schema", "response_format", "json_schema"),
        ("json_object", "response_format", "json_object"),
        ("grammar", "grammar", None),
    ],
)
async def test_json_forcing(
    fake_llm: FakeLlmServer, mode: JsonMode, key: str, expected: str | None
) -> None:
    fake_llm.enqueue(text("{}"))
    reply = await client(fake_llm, mode).complete(MESSAGES)
    assert reply.text == "{}" and reply.prompt_tokens == 100 and reply.completion_tokens == 50
    body = fake_llm.requests[-1]
    assert key in body
    if expected:
        assert body["response_format"]["type"] == expected
    else:
        assert body["grammar"].startswith("root ::=") and "response_format" not in body
    if mode == "json_schema":
        assert body["response_format"]["json_schema"]["strict"] is True


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_transient_errors_are_retried(fake_llm: FakeLlmServer, status: int) -> None:
    fake_llm.enqueue(error(status), error(status), text("{}"))
    reply = await client(fake_llm).complete(MESSAGES)
    assert reply.text == "{}" and reply.attempts == 3 and len(fake_llm.requests) == 3


async def test_retries_give_up(fake_llm: FakeLlmServer) -> None:
    fake_llm.enqueue(error(500), error(500), error(500), text("{}"))
    with pytest.raises(LlmUnavailable) as info:
        await client(fake_llm).complete(MESSAGES)
    assert info.value.transient and info.value.attempts == 3
    assert "HTTP 500" in str(info.value)


@pytest.mark.parametrize(
    ("status", "code"), [(400, None), (401, None), (429, "insufficient_quota")]
)
async def test_permanent_errors_are_not_retried(
    fake_llm: FakeLlmServer, status: int, code: str | None
) -> None:
    fake_llm.enqueue(error(status, code), text("{}"))
    with pytest.raises(LlmUnavailable) as info:
        await client(fake_llm).complete(MESSAGES)
    assert not info.value.transient and len(fake_llm.requests) == 1


async def test_timeout_is_transient(fake_llm: FakeLlmServer) -> None:
    fake_llm.enqueue(slow(1.0), slow(1.0))
    started = time.monotonic()
    with pytest.raises(LlmUnavailable) as info:
        await client(fake_llm, timeout_s=0.2, max_attempts=2).complete(MESSAGES)
    assert info.value.transient and "APITimeoutError" in str(info.value)
    assert time.monotonic() - started < 1.5


async def test_unreachable_server() -> None:
    dead = LlmClient(
        base_url="http://127.0.0.1:9/v1", api_key=None, model="m", timeout_s=0.5,
        retry_wait_s=0.0, max_attempts=2,
    )  # fmt: skip
    with pytest.raises(LlmUnavailable) as info:
        await dead.complete(MESSAGES)
    assert info.value.transient and info.value.attempts == 2


async def test_endpoint_without_structured_outputs_falls_back_to_json_mode(
    fake_llm: FakeLlmServer,
) -> None:
    fake_llm.reject_json_schema = True
    fake_llm.enqueue(text("{}"), text("{}"))
    llm = client(fake_llm, "json_schema")
    assert (await llm.complete(MESSAGES)).text == "{}"
    assert llm.json_mode == "json_object"
    assert (await llm.complete(MESSAGES)).text == "{}"
    types = [r.get("response_format", {}).get("type") for r in fake_llm.requests]
    assert types == ["json_schema", "json_object", "json_object"]


async def test_other_bad_requests_are_not_downgraded(fake_llm: FakeLlmServer) -> None:
    fake_llm.enqueue(error(400))
    llm = client(fake_llm, "json_schema")
    with pytest.raises(LlmUnavailable):
        await llm.complete(MESSAGES)
    assert llm.json_mode == "json_schema"
