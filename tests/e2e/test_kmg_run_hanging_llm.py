"""`kmg run` against `kmg venue` with the LLM advisor on and the LLM hanging (issue 18, item 1):
SIGTERM still ends the run with exit 0 within 5 s (the review in flight is cancelled), and the
bot keeps handling candles while the review hangs.

The advisor is the real ``openai`` SDK against a fake OpenAI-compatible server on 127.0.0.1
whose every answer takes 60 s; the venue replays the packaged btc-usdt slice whose candles give
the default strategy (with TRADE_SOON) an entry candidate within seconds.
"""

from __future__ import annotations

from pathlib import Path

from kmg_autotrader.domain import Mode
from tests.e2e.harness import Rehearsal, VenueConfig
from tests.fakes.fake_llm_server import FakeLlmServer, slow

ROWS = (4_693, 4_729)  # the PAPER slice of test_kmg_run_venue (an entry candidate at ~4,711)


async def test_sigterm_exits_0_within_5_s_while_the_advisor_hangs(tmp_path: Path) -> None:
    with FakeLlmServer(default=slow(60)) as llm:
        venue = VenueConfig(exchange="binance", speed=600.0, warmup=1_100, rows=ROWS)
        async with Rehearsal(tmp_path, venue) as r:
            r.set_risk()
            r.start_bot(
                live=False,
                ADVISOR_MODE="advisory",
                OPENAI_BASE_URL=llm.base_url,
                OPENAI_API_KEY="sk-test-not-a-real-key-000",
                LLM_TIMEOUT_SECONDS="120",
                GPT_CALL_LIMIT_PER_HOUR="100",
                ADVISOR_SYMBOL_COOLDOWN_MINUTES="0",
            )
            await r.wait_db()
            await r.wait_for(lambda: bool(llm.requests), "a candidate under review", timeout=90)
            marked = r.db.repos.equity.latest(Mode.PAPER)
            assert marked is not None
            # the symbol under review keeps its candles coming, and the bot keeps marking them
            await r.wait_for(
                lambda: (
                    (p := r.db.repos.equity.latest(Mode.PAPER)) is not None
                    and p.timestamp > marked.timestamp
                ),
                "a candle handled while the advisor hangs",
                timeout=30,
            )
            took = await r.stop_bot()
            print(f"kmg run: SIGTERM -> exit 0 in {took:.2f} s with the advisor hanging")
            assert took < 5
            assert len(llm.requests) == 1
