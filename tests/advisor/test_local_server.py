"""LocalLlmServer and the local provider without a usable model (no llama.cpp needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmg_autotrader.advisor import LocalLlmError, LocalLlmServer, build_advisor
from kmg_autotrader.advisor.local_server import free_port, missing_requirements
from kmg_autotrader.config import Settings
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.storage.repositories import Repositories


def test_missing_model_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    reason = missing_requirements(missing)
    assert reason is not None
    with pytest.raises(LocalLlmError):
        LocalLlmServer(missing).start()


def test_free_port_is_loopback_and_usable() -> None:
    port = free_port()
    assert 0 < port < 65536
    server = LocalLlmServer(Path("/x.gguf"), port=port)
    assert server.base_url == f"http://127.0.0.1:{port}/v1" and not server.running
    server.stop()  # stopping a server that never started is harmless


@pytest.mark.db
def test_local_provider_without_a_model_is_off(repos: Repositories, tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, llm_provider="local", gguf_model_path=str(tmp_path / "none.gguf")
    )
    advisor = build_advisor(settings, repos, SimulatedClock(0))
    status = advisor.status()
    assert advisor.mode == "off" and status["enabled"] is False
    assert "LLM_PROVIDER=local" in status["reason"] and status["calls_last_hour"] == 0
