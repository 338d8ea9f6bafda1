"""The LLM client: the official ``openai`` SDK against OpenAI or any OpenAI-compatible server,
with a per-call timeout, tenacity retries on transient errors only, and a configurable way of
forcing JSON (Structured Outputs, JSON mode, or a llama.cpp grammar in ``extra_body``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import openai
from loguru import logger
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from kmg_autotrader.advisor.schema import GBNF_GRAMMAR, response_format_json_schema

JsonMode = Literal["json_schema", "json_object", "grammar"]

_DEADLINE_SLACK_S = 5.0


class LlmUnavailable(Exception):
    """The LLM could not be reached or refused the request; ``transient`` says whether retrying
    later could help (timeouts, connection errors, 429, 5xx)."""

    def __init__(self, message: str, *, transient: bool, attempts: int = 1) -> None:
        super().__init__(message)
        self.transient = transient
        self.attempts = attempts


@dataclass(frozen=True, slots=True)
class LlmReply:
    """One completion: the raw text and what it cost."""

    text: str | None
    latency_ms: int
    prompt_tokens: int | None
    completion_tokens: int | None
    attempts: int = 1
    refusal: str | None = None


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: timeouts, connection errors, 429 (not quota), 5xx."""
    if isinstance(exc, openai.RateLimitError):
        # An exhausted quota answers 429 too, but waiting a few seconds will not fix it.
        return getattr(exc, "code", None) != "insufficient_quota"
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in (408, 409)
    return isinstance(exc, openai.APITimeoutError | openai.APIConnectionError)


def _rejects_schema(exc: openai.BadRequestError) -> bool:
    """True when a 400 is about ``response_format`` (the endpoint lacks Structured Outputs)."""
    text = str(exc).lower()
    return "response_format" in text or "json_schema" in text


def _describe(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} ({type(exc).__name__})"
    return type(exc).__name__


class LlmClient:
    """Chat completions with JSON forced the way the endpoint supports.

    The SDK's own retries are off (``max_retries=0``) so that tenacity alone decides, and only
    for transient errors. The API key is handed to the SDK and never logged.
    """

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | None,
        model: str,
        json_mode: JsonMode = "json_schema",
        timeout_s: float = 30.0,
        max_attempts: int = 3,
        retry_wait_s: float = 1.0,
        max_tokens: int = 600,
        temperature: float = 0.0,
        seed: int | None = 7,
        grammar: str = GBNF_GRAMMAR,
    ) -> None:
        self.model = model
        self.json_mode: JsonMode = json_mode
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.retry_wait_s = retry_wait_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.seed = seed
        self.grammar = grammar
        # OpenAI-compatible local servers ignore the key but the SDK insists on one.
        self._sdk = openai.AsyncOpenAI(
            api_key=api_key or "not-needed",
            base_url=base_url,
            timeout=timeout_s,
            max_retries=0,
        )

    def _json_arguments(self) -> dict[str, Any]:
        if self.json_mode == "json_schema":
            return {"response_format": response_format_json_schema()}
        if self.json_mode == "json_object":
            return {"response_format": {"type": "json_object"}}
        return {"extra_body": {"grammar": self.grammar}}

    async def _once(self, messages: Sequence[dict[str, str]]) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            **self._json_arguments(),
        }
        if self.seed is not None:
            kwargs["seed"] = self.seed
        return await self._sdk.chat.completions.create(**kwargs)

    async def complete(
        self,
        messages: Sequence[dict[str, str]],
        *,
        before_request: Callable[[], None] | None = None,
    ) -> LlmReply:
        """One answer to ``messages``; raises :class:`LlmUnavailable` when none can be had.

        ``before_request`` is called just before each HTTP request leaves (every retry too);
        whatever it raises stops the call at once and propagates (the budget uses this).
        """
        started = time.monotonic()

        async def send() -> Any:
            if before_request is not None:
                before_request()
            return await self._once(messages)

        attempts = 0
        # Attempts bound the work; the deadline (every attempt timing out, the back-off waits and
        # some slack for a busy machine) keeps a slow endpoint from stalling the loop longer.
        waits = sum(
            min(self.retry_wait_s * 2**n, 10 * self.retry_wait_s)
            for n in range(self.max_attempts - 1)
        )
        deadline = self.timeout_s * self.max_attempts + waits + _DEADLINE_SLACK_S
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(deadline),
            wait=wait_exponential(multiplier=self.retry_wait_s, max=10 * self.retry_wait_s),
            reraise=True,
        )
        try:
            try:
                async for attempt in retrying:
                    with attempt:
                        attempts = attempt.retry_state.attempt_number
                        if attempts > 1:
                            logger.info("LLM retry {} of {}", attempts, self.max_attempts)
                        response = await send()
            except openai.BadRequestError as exc:
                if self.json_mode != "json_schema" or not _rejects_schema(exc):
                    raise
                # The endpoint does not do Structured Outputs: use JSON mode from now on.
                logger.warning("endpoint refuses json_schema; switching to JSON mode")
                self.json_mode = "json_object"
                attempts += 1
                response = await send()
        except openai.OpenAIError as exc:
            transient = is_transient(exc)
            logger.warning("LLM call failed after {} attempt(s): {}", attempts, _describe(exc))
            raise LlmUnavailable(_describe(exc), transient=transient, attempts=attempts) from exc
        latency_ms = int((time.monotonic() - started) * 1000)
        usage = getattr(response, "usage", None)
        text: str | None = None
        refusal: str | None = None
        if getattr(response, "choices", None):
            message = response.choices[0].message
            text = message.content
            refusal = getattr(message, "refusal", None)
        return LlmReply(
            text=text,
            latency_ms=latency_ms,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            attempts=attempts,
            refusal=refusal,
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._sdk.close()
