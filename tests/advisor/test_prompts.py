"""Prompt builder: versioned templates, deterministic output and hash."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal

from kmg_autotrader.advisor import AdvisorContext
from kmg_autotrader.advisor.prompts import PromptBuilder
from kmg_autotrader.domain import Candidate, Mode, Position


def test_prompt_is_deterministic_and_versioned(
    candidate: Candidate, context: AdvisorContext
) -> None:
    first = PromptBuilder().build(candidate, context)
    second = PromptBuilder().build(candidate, context)
    assert first == second
    assert re.fullmatch(r"v1-[0-9a-f]{8}", first.version)
    assert re.fullmatch(r"[0-9a-f]{64}", first.hash)


def test_prompt_contents(candidate: Candidate, context: AdvisorContext) -> None:
    position = Position(Mode.PAPER, "ETH/USDT", Decimal("0.5"), Decimal("1200"), 0)
    closed = dataclasses.replace(
        position,
        closed_at=1,
        exit_price=Decimal("1250"),
        realized_pnl=Decimal("25"),
        exit_reason="take_profit",
    )
    ctx = dataclasses.replace(context, open_positions=(position,), recent_trades=(closed,))
    prompt = PromptBuilder().build(candidate, ctx)
    system, user = (m["content"] for m in prompt.messages)
    assert '"reasoning"' in system and "step by step" in system
    assert "buy BTC/USDT (5m)" in user and "ema_cross" in user and "rsi_14=56" in user
    assert "Regime: trend_up" in user and "drawdown_pct=0.4" in user
    assert "ETH/USDT 0.5 @ 1200" in user and "take_profit" in user and "+4.17%" in user
    assert "recent closes:" in user


def test_different_situation_different_hash(candidate: Candidate, context: AdvisorContext) -> None:
    builder = PromptBuilder()
    other = dataclasses.replace(candidate, price=candidate.price + 1)
    assert builder.build(candidate, context).hash != builder.build(other, context).hash


def test_repair_quotes_the_errors(candidate: Candidate, context: AdvisorContext) -> None:
    builder = PromptBuilder()
    prompt = builder.build(candidate, context)
    messages = builder.repair(prompt, "not json", ["not valid JSON: Expecting value"])
    assert messages[-2] == {"role": "assistant", "content": "not json"}
    assert "not valid JSON: Expecting value" in messages[-1]["content"]


def test_replay_key_ignores_the_account(candidate: Candidate, context: AdvisorContext) -> None:
    # a backtest rebuilds the candidate and the candles, not the live account
    builder = PromptBuilder()
    live = dataclasses.replace(
        context,
        open_positions=(Position(Mode.PAPER, "ETH/USDT", Decimal("0.5"), Decimal("1200"), 0),),
        risk_state={"equity": 9_876.5, "drawdown_pct": 1.2},
    )
    backtest = dataclasses.replace(context, risk_state={})
    live_prompt, backtest_prompt = (
        builder.build(candidate, live),
        builder.build(candidate, backtest),
    )
    assert live_prompt.messages != backtest_prompt.messages
    assert live_prompt.hash == backtest_prompt.hash
    other_candles = dataclasses.replace(context, candles=None)
    assert builder.build(candidate, other_candles).hash != live_prompt.hash


def test_compact_prompt_for_the_local_model(candidate: Candidate, context: AdvisorContext) -> None:
    # The local provider's templates: the same facts without the list of closes, stable lines
    # first (llama.cpp reuses the cached prefix), versioned like the others.
    full = PromptBuilder().build(candidate, context)
    compact = PromptBuilder("compact_v1").build(candidate, context)
    assert re.fullmatch(r"compact_v1-[0-9a-f]{8}", compact.version)
    assert compact.hash != full.hash
    system, user = (m["content"] for m in compact.messages)
    assert '"reasoning"' in system and '"confidence"' in system
    assert "buy BTC/USDT 5m" in user and "ema_cross" in user and "rsi_14=56" in user
    assert "change 1h" in user and "drawdown_pct=0.4" in user
    assert "recent closes:" not in user
    assert len(compact.as_text()) < 0.75 * len(full.as_text())
