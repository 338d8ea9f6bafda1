"""Builds the advisor from the settings: which endpoint, how JSON is forced, or why it is off."""

from __future__ import annotations

from typing import Any

from kmg_autotrader.advisor.audit import AuditRecorder, AuditSink, MemoryCallStore, SignalLookup
from kmg_autotrader.advisor.client import JsonMode, LlmClient
from kmg_autotrader.advisor.errors import AdvisorUnavailableError
from kmg_autotrader.advisor.gate import CallGate
from kmg_autotrader.advisor.local_server import SMOLLM2_FILE, LocalLlmServer, missing_requirements
from kmg_autotrader.advisor.prompts import PromptBuilder
from kmg_autotrader.advisor.schema import gbnf_grammar
from kmg_autotrader.advisor.service import Advisor, AdvisorConfig
from kmg_autotrader.config import Settings
from kmg_autotrader.domain import Candidate, Mode
from kmg_autotrader.domain.clock import Clock
from kmg_autotrader.vault import VaultKind, VaultWriter

#: Prompt templates for the local provider: the same information in about half the tokens, since
#: prompt evaluation dominates a small CPU model's latency (``prompts/*_compact_v1.txt``).
LOCAL_PROMPT_VERSION = "compact_v1"
#: Default per-request timeout for the local provider when ``LLM_TIMEOUT_SECONDS`` is not set:
#: a CPU model on a busy machine is slower than a hosted API (the 30 s default is for those).
LOCAL_TIMEOUT_S = 120.0
#: Client defaults for the local provider: answers are short (a verdict, no levels for
#: SmolLM2), and a timed-out generation keeps the single-slot server busy, so retry once only.
LOCAL_CLIENT_DEFAULTS: dict[str, Any] = {"max_tokens": 200, "max_attempts": 2}


def vault_sink(settings: Settings, clock: Clock) -> AuditSink:
    """An audit sink appending each call to the JSONL vault (``DATA_DIR/vault/advisor_calls``),
    filed under the day of the call."""
    writer = VaultWriter(settings.data_dir, clock=clock)

    def sink(record: dict[str, Any]) -> None:
        writer.try_append(VaultKind.ADVISOR_CALLS, record, ts_ms=record.get("created_at"))

    return sink


def signal_lookup(repos: Any, mode: Mode) -> SignalLookup | None:
    """Finds the id of the stored signal row of a candidate (same symbol, candle and side), so
    the dashboard can show each signal's advisor answer; None without a signal repository."""
    signals = getattr(repos, "signals", None)
    if signals is None:
        return None

    def lookup(candidate: Candidate) -> int | None:
        for row in signals.recent(mode, limit=5, symbol=candidate.symbol, passed=True):
            if row["timestamp"] == candidate.timestamp and row["side"] == candidate.side.value:
                return int(row["id"])
        return None

    return lookup


def build_advisor(
    settings: Settings,
    repos: Any,
    clock: Clock,
    *,
    mode: Mode = Mode.PAPER,
    replay: bool = False,
    audit_sink: AuditSink | None = None,
    vault: bool = True,
    client_options: dict[str, Any] | None = None,
) -> Advisor:
    """The advisor for ``settings``; ``repos`` is a ``Repositories`` (its ``advisor_calls`` is
    the audit log, the budget and the replay source). ``mode`` is the trading mode stored on
    each audit row. ``replay=True`` answers from recorded calls by prompt hash and never calls
    an LLM. Every call is written to ``repos.advisor_calls`` (linked to its signal row) and to
    ``audit_sink`` — by default (``vault=True``, not replaying) the JSONL vault under
    ``DATA_DIR``. ``client_options`` tune :class:`LlmClient` (``max_attempts``, ...).

    No OPENAI_API_KEY and no OPENAI_BASE_URL (or a local provider without the ``local-llm``
    extra or its model) gives an advisor whose effective mode is ``off``;
    :meth:`Advisor.status` says why — except with ``ADVISOR_MODE=required``, which then raises
    :class:`AdvisorUnavailableError` (one line): ``required`` never trades on rules alone.
    A local model server starts with :meth:`Advisor.start` (or at the first review).
    """
    calls = repos.advisor_calls
    configured = settings.advisor_mode
    provider: str = settings.llm_provider
    json_mode: JsonMode = settings.llm_json_mode
    model = settings.openai_model
    base_url = settings.openai_base_url
    effective = configured
    reason: str | None = None
    client: LlmClient | None = None
    local: LocalLlmServer | None = None
    options = dict(client_options or {})
    timeout_s = settings.llm_timeout_seconds
    # Chosen by the provider even when replaying, so replayed prompts hash as they were recorded.
    prompt_version = LOCAL_PROMPT_VERSION if provider == "local" else None

    if replay:
        effective = "advisory" if configured == "off" else configured
        provider = "replay"
    elif configured == "off":
        reason = "ADVISOR_MODE is off (rules only)"
    elif provider == "local":
        missing = missing_requirements(settings.gguf_model_path)
        if missing:
            effective, reason = "off", f"LLM_PROVIDER=local but {missing}"
        else:
            # DATA_DIR/run holds its pid file: a later start stops it if this bot dies first
            local = LocalLlmServer(settings.gguf_model_path, state_dir=settings.data_dir / "run")
            base_url, model, json_mode = local.base_url, local.model_alias, "grammar"
            if "llm_timeout_seconds" not in settings.model_fields_set:
                timeout_s = LOCAL_TIMEOUT_S
            for option, value in LOCAL_CLIENT_DEFAULTS.items():
                options.setdefault(option, value)
            if local.model_path is not None and local.model_path.name == SMOLLM2_FILE:
                # 135M parameters cannot do price arithmetic: ask it for a verdict only.
                options.setdefault("grammar", gbnf_grammar(levels=False))
    elif settings.openai_api_key is None and base_url is None:
        effective, reason = "off", "no OPENAI_API_KEY and no OPENAI_BASE_URL: advisor off"

    if configured == "required" and effective == "off":
        raise AdvisorUnavailableError(
            f"ADVISOR_MODE=required but the advisor cannot run: {reason}. Fix it, or set "
            "ADVISOR_MODE=advisory or off to trade without LLM approval"
        )
    if effective != "off" and not replay:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        client = LlmClient(
            base_url=base_url,
            api_key=key,
            model=model,
            json_mode=json_mode,
            timeout_s=timeout_s,
            **options,
        )
    config = AdvisorConfig(
        mode=effective,
        configured_mode=configured,
        provider=provider,
        model=model,
        json_mode=json_mode,
        base_url=base_url,
        per_hour=settings.gpt_call_limit_per_hour,
        cooldown_minutes=settings.advisor_symbol_cooldown_minutes,
        replay=replay,
        disabled_reason=reason,
    )
    if audit_sink is None and vault and not replay:
        audit_sink = vault_sink(settings, clock)
    gate = CallGate(
        calls,
        clock,
        per_hour=settings.gpt_call_limit_per_hour,
        cooldown_minutes=settings.advisor_symbol_cooldown_minutes,
    )
    return Advisor(
        config,
        clock=clock,
        gate=gate,
        recorder=AuditRecorder(
            MemoryCallStore() if replay else calls,
            mode,
            audit_sink,
            signal_lookup=None if replay else signal_lookup(repos, mode),
        ),
        prompts=PromptBuilder(prompt_version) if prompt_version else PromptBuilder(),
        client=client,
        replay_source=calls if replay else None,
        local_server=local,
    )
