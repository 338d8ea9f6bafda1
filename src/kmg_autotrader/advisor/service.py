"""The advisor stage: asks the LLM for a structured second opinion on a rule candidate.

A bad, missing, late or over-budget answer never stops the bot and never becomes a default
decision: the advisor abstains (``valid=False`` with a ``fallback``) and the advisor mode
decides what that means (see :func:`~kmg_autotrader.advisor.apply.apply_advice`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from loguru import logger

from kmg_autotrader.advisor.audit import AuditRecorder, CallRecord
from kmg_autotrader.advisor.client import LlmClient, LlmReply, LlmUnavailable
from kmg_autotrader.advisor.context import AdvisorContext
from kmg_autotrader.advisor.cost import estimate_cost_usd
from kmg_autotrader.advisor.errors import AdvisorUnavailableError
from kmg_autotrader.advisor.gate import BudgetExhausted, CallGate
from kmg_autotrader.advisor.local_server import LocalLlmError, LocalLlmServer
from kmg_autotrader.advisor.prompts import Prompt, PromptBuilder
from kmg_autotrader.advisor.validation import ValidationResult, validate_answer
from kmg_autotrader.domain import AdvisorAction, AdvisorDecision, Candidate
from kmg_autotrader.domain.clock import Clock


class ReplaySource(Protocol):
    """Recorded answers by prompt hash (``AdvisorCallRepository`` fits)."""

    def find_by_prompt_hash(self, prompt_hash: str) -> dict[str, Any] | None:
        """The newest recorded call with an answer for ``prompt_hash``."""
        ...


@dataclass(frozen=True, slots=True)
class AdvisorConfig:
    """How this advisor is set up (what :meth:`Advisor.status` shows)."""

    mode: str  # effective mode: off | advisory | required
    configured_mode: str
    provider: str
    model: str
    json_mode: str
    base_url: str | None
    per_hour: int
    cooldown_minutes: int
    replay: bool = False
    disabled_reason: str | None = None


def abstain(fallback: str, error: str | None = None, call_id: int | None = None) -> AdvisorDecision:
    """An abstention: no action, no confidence — never a default answer."""
    return AdvisorDecision(
        valid=False, action=None, confidence=None, fallback=fallback, error=error, call_id=call_id
    )


class Advisor:
    """The LLM advisor. Use :func:`~kmg_autotrader.advisor.factory.build_advisor` to make one.

    ``review`` is the stage's one job; ``status`` is for the dashboard; ``aclose`` releases the
    HTTP pool and stops a local model server the advisor started.
    """

    def __init__(
        self,
        config: AdvisorConfig,
        *,
        clock: Clock,
        gate: CallGate,
        recorder: AuditRecorder,
        prompts: PromptBuilder,
        client: LlmClient | None = None,
        replay_source: ReplaySource | None = None,
        local_server: LocalLlmServer | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._gate = gate
        self._recorder = recorder
        self._prompts = prompts
        self._client = client
        self._replay = replay_source
        self._local = local_server
        self._local_lock = asyncio.Lock()
        self._local_error: str | None = None
        self._inflight: Counter[str] = Counter()
        self._last_fallback: str | None = None

    @property
    def mode(self) -> str:
        """The effective advisor mode (``off`` when there is no endpoint to ask)."""
        return self.config.mode

    # ---- public ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the local model server now rather than at the first review (call it once,
        before trading starts). A server that cannot start raises
        :class:`AdvisorUnavailableError` (one line) in ``required`` mode; in ``advisory`` mode
        it is logged and each review abstains (the rule decision stands, as advisory means).
        """
        try:
            await self._ensure_local()
        except LocalLlmError as exc:
            if self.config.mode == "required":
                raise AdvisorUnavailableError(
                    f"ADVISOR_MODE=required but the local LLM server cannot start: {exc}"
                ) from exc
            logger.warning("local LLM server cannot start ({}); advisor abstains", exc)

    async def review(self, candidate: Candidate, context: AdvisorContext) -> AdvisorDecision:
        """A validated second opinion on ``candidate``, or an abstention. Never raises."""
        if self.config.mode == "off":
            return abstain("advisor_off", self.config.disabled_reason)
        try:
            decision = await self._review(candidate, context)
        except Exception as exc:  # an advisor bug must not stop the trading loop
            logger.exception("advisor failed on {}", candidate.symbol)
            decision = abstain("advisor_error", f"{type(exc).__name__}: {exc}")
        self._last_fallback = decision.fallback
        return decision

    def status(self) -> dict[str, Any]:
        """Mode, provider, model, whether it is enabled (and why not), budget use."""
        try:
            used: int | None = self._gate.calls_last_hour()
        except Exception as exc:
            logger.warning("advisor budget not readable: {}", type(exc).__name__)
            used = None
        reason = self.config.disabled_reason or self._local_error
        return {
            "mode": self.config.mode,
            "configured_mode": self.config.configured_mode,
            "provider": self.config.provider,
            "model": self.config.model,
            "json_mode": self._client.json_mode if self._client else self.config.json_mode,
            "base_url": self.config.base_url,
            "enabled": self.config.mode != "off",
            "reason": reason,
            "replay": self.config.replay,
            "prompt_version": self._prompts.version,
            "calls_last_hour": used,
            "budget_per_hour": self.config.per_hour,
            "cooldown_minutes": self.config.cooldown_minutes,
            "last_fallback": self._last_fallback,
        }

    async def aclose(self) -> None:
        """Release the HTTP pool and stop the local model server if this advisor started it."""
        if self._client is not None:
            await self._client.aclose()
        if self._local is not None:
            await asyncio.to_thread(self._local.stop)

    # ---- steps -------------------------------------------------------------------------------

    def _record(self, candidate: Candidate, prompt: Prompt | None, **fields: Any) -> int | None:
        record = CallRecord(
            symbol=candidate.symbol,
            timestamp=candidate.timestamp,
            created_at=fields.pop("created_at", None) or self._clock.now_ms(),
            model=fields.pop("model", self.config.model),
            prompt_version=prompt.version if prompt else self._prompts.version,
            prompt_hash=prompt.hash if prompt else "",
            prompt=prompt.as_text() if prompt else "",
            **fields,
        )
        return self._recorder.record(record, candidate)

    def _abstain_recorded(
        self,
        candidate: Candidate,
        prompt: Prompt | None,
        fallback: str,
        error: str,
        errors: list[str] | None = None,
        **fields: Any,
    ) -> AdvisorDecision:
        logger.info("advisor abstains on {}: {} ({})", candidate.symbol, fallback, error)
        call_id = self._record(
            candidate, prompt, fallback=fallback, errors=errors or [error], **fields
        )
        return abstain(fallback, error, call_id)

    async def _review(self, candidate: Candidate, context: AdvisorContext) -> AdvisorDecision:
        prompt = self._prompts.build(candidate, context)
        if self.config.replay:
            return self._replayed(candidate, prompt)
        blocked = self._blocked(candidate.symbol)
        if blocked is not None:
            fallback, _, why = blocked.partition(": ")
            return self._abstain_recorded(candidate, prompt, fallback, why)
        self._inflight[candidate.symbol] += 1
        try:
            return await self._ask(candidate, prompt)
        finally:
            self._inflight[candidate.symbol] -= 1
            if self._inflight[candidate.symbol] <= 0:
                del self._inflight[candidate.symbol]

    def _blocked(self, symbol: str) -> str | None:
        # A review of the symbol still in flight may not have sent its request yet: count it so
        # that two concurrent reviews cannot both skip a cooldown. (The budget is taken per
        # request, just before it leaves: see CallGate.take.)
        return self._gate.blocked(symbol, pending_symbol=self._inflight[symbol])

    async def _ensure_local(self) -> None:
        if self._local is None or self._local.running:
            return
        async with self._local_lock:
            if not self._local.running:
                try:
                    await asyncio.to_thread(self._local.start)
                    self._local_error = None
                except LocalLlmError as exc:
                    self._local_error = str(exc)
                    raise

    async def _ask(self, candidate: Candidate, prompt: Prompt) -> AdvisorDecision:
        assert self._client is not None
        try:
            await self._ensure_local()
        except LocalLlmError as exc:
            return self._abstain_recorded(candidate, prompt, "unreachable", f"local LLM: {exc}")
        sent = 0

        def before_request() -> None:  # every request that leaves is counted, answered or not
            nonlocal sent
            self._gate.take(candidate.symbol)
            sent += 1

        try:
            reply = await self._client.complete(prompt.messages, before_request=before_request)
        except BudgetExhausted as exc:
            why = f"{exc}; {sent} request(s) for this candidate got no answer" if sent else str(exc)
            return self._abstain_recorded(candidate, prompt, "budget_exhausted", why)
        except LlmUnavailable as exc:
            fallback = "unreachable" if exc.transient else "llm_error"
            return self._abstain_recorded(
                candidate, prompt, fallback, f"{exc} after {exc.attempts} attempt(s)"
            )
        result = self._validate(reply, candidate)
        replies = [reply]
        first_errors = list(result.errors)
        repaired = False
        if not result.ok:
            repaired = True
            messages = self._prompts.repair(prompt, reply.text or "", result.errors)
            logger.info("advisor answer invalid ({}); one repair attempt", "; ".join(result.errors))
            try:
                repair_reply = await self._client.complete(messages, before_request=before_request)
            except (LlmUnavailable, BudgetExhausted) as exc:
                first_errors.append(f"repair attempt failed: {exc}")
            else:
                replies.append(repair_reply)
                result = self._validate(repair_reply, candidate)
        return self._finish(candidate, prompt, replies, result, first_errors, repaired)

    @staticmethod
    def _validate(reply: LlmReply, candidate: Candidate) -> ValidationResult:
        if reply.text is None and reply.refusal:
            return ValidationResult(None, None, False, (f"refused: {reply.refusal[:300]}",))
        return validate_answer(reply.text, candidate)

    def _finish(
        self,
        candidate: Candidate,
        prompt: Prompt,
        replies: list[LlmReply],
        result: ValidationResult,
        first_errors: list[str],
        repaired: bool,
    ) -> AdvisorDecision:
        def total(name: str) -> int | None:
            values = [getattr(r, name) for r in replies if getattr(r, name) is not None]
            return sum(values) if values else None

        prompt_tokens, completion_tokens = total("prompt_tokens"), total("completion_tokens")
        created_at = self._clock.now_ms()
        # Errors of the first answer, then of the repaired one (if a repair answer came back).
        errors = first_errors + [f"repair: {e}" for e in result.errors if len(replies) > 1]
        fields: dict[str, Any] = {
            "created_at": created_at,
            "raw_answer": replies[-1].text if replies[-1].text is not None else "",
            "parsed": result.parsed,
            "valid": result.ok,
            "errors": errors,
            "repaired": repaired,
            "latency_ms": total("latency_ms"),
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cost_usd": estimate_cost_usd(
                self.config.model,
                prompt_tokens,
                completion_tokens,
                local=self.config.provider == "local",
            ),
        }
        if result.answer is None:
            reason = "; ".join(result.errors) or "invalid answer"
            logger.warning("advisor answer rejected for {}: {}", candidate.symbol, reason)
            decision = self._abstain_recorded(candidate, prompt, "invalid_answer", reason, **fields)
        else:
            answer = result.answer
            call_id = self._record(
                candidate, prompt, action=answer.action, confidence=answer.confidence, **fields
            )
            decision = self._decision(answer_fields=result, call_id=call_id)
        if decision.call_id is not None:  # the audit log counts this row (it has an answer)
            self._gate.logged(candidate.symbol, created_at)
        return decision

    def _replayed(self, candidate: Candidate, prompt: Prompt) -> AdvisorDecision:
        assert self._replay is not None
        row = self._replay.find_by_prompt_hash(prompt.hash)
        if row is None:
            return self._abstain_recorded(
                candidate, prompt, "replay_miss", f"no recorded answer for {prompt.hash[:12]}"
            )
        result = validate_answer(row.get("raw_answer"), candidate)
        model = str(row.get("model") or "")
        fields: dict[str, Any] = {
            "model": (model if model.startswith("replay:") else f"replay:{model}")[:128],
            "raw_answer": row.get("raw_answer"),
            "parsed": result.parsed,
            "valid": result.ok,
            "repaired": bool(row.get("repaired")),
            "latency_ms": 0,
            "cost_usd": 0.0,
        }
        if result.answer is None:
            reason = "; ".join(result.errors) or "invalid answer"
            return self._abstain_recorded(
                candidate,
                prompt,
                "invalid_answer",
                f"replayed: {reason}",
                errors=list(result.errors),
                **fields,
            )
        call_id = self._record(
            candidate,
            prompt,
            action=result.answer.action,
            confidence=result.answer.confidence,
            **fields,
        )
        return self._decision(answer_fields=result, call_id=call_id)

    @staticmethod
    def _decision(*, answer_fields: ValidationResult, call_id: int | None) -> AdvisorDecision:
        answer = answer_fields.answer
        assert answer is not None
        return AdvisorDecision(
            valid=True,
            action=AdvisorAction(answer.action),
            confidence=answer.confidence,
            entry=answer.entry,
            stop_loss=answer.stop_loss,
            take_profit=answer.take_profit,
            horizon_minutes=answer.horizon_minutes,
            reasoning=answer.reasoning,
            risks=tuple(answer.risks or ()),
            call_id=call_id,
        )
