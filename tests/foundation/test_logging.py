"""Secrets never reach the log file: put a fake key in the settings, log the settings, grep."""

from __future__ import annotations

from pathlib import Path

import pytest
from loguru import logger

from kmg_autotrader.config import load_settings
from kmg_autotrader.logging_setup import Redactor, setup_logging

FAKE_KEY = "sk-proj-FAKEKEY0123456789abcdef"
FAKE_SECRET = "binance-secret-XYZ-987654321"


def test_secrets_are_redacted_from_the_log_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("BINANCE_SECRET_KEY", FAKE_SECRET)
    monkeypatch.setenv("POSTGRES_URL", "postgresql://kmg_user:pgpass-777@localhost/kmg")
    settings = load_settings(None)
    log_file = setup_logging(
        data_dir=tmp_path, secrets=settings.secret_values(), console=False, level="DEBUG"
    )
    assert log_file is not None
    logger.info("settings: {}", settings.model_dump())
    logger.info("raw: {} {}", FAKE_KEY, FAKE_SECRET)
    logger.info("url: {}", "postgresql://kmg_user:pgpass-777@localhost/kmg")
    try:
        raise RuntimeError(f"exchange said: bad key {FAKE_SECRET}")
    except RuntimeError:
        logger.exception("order failed")
    logger.remove()
    text = log_file.read_text()
    assert "order failed" in text and "settings:" in text
    for secret in (FAKE_KEY, FAKE_SECRET, "pgpass-777"):
        assert secret not in text


def test_redactor_masks_unconfigured_secret_shapes() -> None:
    redact = Redactor()
    assert redact("key sk-abcdefghijklmnop1234") == "key sk-***"
    assert redact("postgresql://u:pw@host/db") == "postgresql://u:***@host/db"
    assert redact("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/42") == "tgram://***/42"
    assert redact("Authorization: Bearer abcdefghijkl") == "Authorization: Bearer ***"
