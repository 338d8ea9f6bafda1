"""`ADVISOR_MODE=required` with an advisor that cannot run: `kmg demo` exits 2 with one line and
trades nothing (it never falls back to rules alone)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_demo_refuses_to_start_without_the_required_advisor(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "ADVISOR_MODE": "required",
        "LLM_PROVIDER": "local",
        "GGUF_MODEL_PATH": str(tmp_path / "missing.gguf"),
        "DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "kmg_autotrader.cli", "demo", "--no-web", "--speed", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "ADVISOR_MODE=required" in errors[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert "entries filled" not in done.stdout  # no run summary: nothing was replayed
