"""The live loop with the LLM advisor in it: the real ``openai`` SDK against a fake
OpenAI-compatible server on 127.0.0.1. Every entry candidate goes to the advisor, each call is
audited, and an advisor "hold" vetoes the rule candidate in advisory mode."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from kmg_autotrader.autopilot.runner import run_demo
from kmg_autotrader.config import load_settings
from tests.fakes.fake_llm_server import FakeLlmServer, answer

LIMIT = 3100  # the packaged BTC/USDT set has its first entry candidates before this

HOLD = {
    "reasoning": "Momentum is fading into resistance and volume is thin; better to wait here.",
    "risks": ["false breakout"],
    "action": "hold",
    "confidence": 0.8,
}


def test_every_candidate_is_reviewed_audited_and_a_hold_vetoes(tmp_path: Path) -> None:
    with FakeLlmServer(default=answer(HOLD)) as llm:
        settings = load_settings(
            None,
            data_dir=tmp_path / "data",
            openai_base_url=llm.base_url,
            openai_api_key="sk-test-not-a-real-key-000",
            advisor_mode="advisory",
            gpt_call_limit_per_hour=100,
            advisor_symbol_cooldown_minutes=0,
        )
        summary = asyncio.run(run_demo(settings, speed=0, limit=LIMIT))
    assert summary.candidates >= 1
    assert summary.advisor_calls == summary.candidates == len(llm.requests)
    assert summary.advisor_vetoes == summary.candidates and summary.entries == 0
    with sqlite3.connect(tmp_path / "data" / "demo.sqlite") as db:
        rows = db.execute("SELECT valid, prompt_version, raw_answer FROM advisor_calls").fetchall()
        orders = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    assert len(rows) == summary.candidates and orders == 0
    assert all(valid and version and '"hold"' in raw for valid, version, raw in rows)
    # the key never reaches the database
    dump = "\n".join(sqlite3.connect(tmp_path / "data" / "demo.sqlite").iterdump())
    assert "sk-test-not-a-real-key-000" not in dump
