"""SIGTERM ends ``kmg demo`` within 5 s while the LLM advisor hangs (issue 18, item 1): the review
in flight is cancelled, not waited for. The advisor is the real ``openai`` SDK against a fake
OpenAI-compatible server on 127.0.0.1 that answers nothing for 60 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fakes.fake_llm_server import FakeLlmServer, slow

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 3100  # the packaged BTC/USDT set has its first entry candidates before this
LIMITED = ("--limit", str(LIMIT))


def test_sigterm_exits_within_5_s_while_the_advisor_hangs(tmp_path: Path) -> None:
    with FakeLlmServer(default=slow(60)) as llm:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
            "DATA_DIR": str(tmp_path / "data"),
            "ADVISOR_MODE": "advisory",
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "sk-test-not-a-real-key-000",
            "LLM_TIMEOUT_SECONDS": "120",
            "GPT_CALL_LIMIT_PER_HOUR": "100",
            "ADVISOR_SYMBOL_COOLDOWN_MINUTES": "0",
            "COLUMNS": "160",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "kmg_autotrader", "demo", "--no-web", "--speed", "0", *LIMITED],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while not llm.requests:  # a candidate's review is under way: it hangs
                assert proc.poll() is None, proc.communicate()[1][-2000:]
                assert time.monotonic() < deadline, "no candidate reached the advisor"
                time.sleep(0.1)
            time.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            try:
                _out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _out, err = proc.communicate()
            took = time.monotonic() - stopped
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    print(f"SIGTERM -> exit with the advisor hanging: {took:.2f} s")
    assert proc.returncode == 0, err[-2000:]
    assert took < 5, f"SIGTERM took {took:.1f} s to end the run while the advisor hung"
    assert "Traceback" not in err
    assert len(llm.requests) == 1
