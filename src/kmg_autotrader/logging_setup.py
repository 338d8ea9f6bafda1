"""The one logger: loguru with a console sink and a rotating file under ``DATA_DIR/logs``.

Secrets are redacted from every message before any sink sees it: the configured secret values
are replaced by ``***``, and well-known secret shapes (OpenAI keys, passwords in URLs, Telegram
bot tokens) are masked even when they are not configured. ``diagnose`` is off so a traceback
never prints local variables (which could hold keys).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from loguru import logger

from kmg_autotrader.fs import private_dir, private_opener, tighten, warn_if_shared

_PATTERNS = (
    re.compile(r"sk-[A-Za-z0-9_\-]{12,}"),  # OpenAI-style keys
    re.compile(r"(?<=://)([^:/@\s]+):([^@/\s]+)@"),  # user:password@ in URLs
    re.compile(r"\b\d{6,12}:[A-Za-z0-9_\-]{30,}\b"),  # Telegram bot tokens
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
)


class Redactor:
    """Replaces secret values and secret-looking strings in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Also redact these values from now on (short values are ignored: too many hits)."""
        for value in secrets:
            if value and len(value) >= 4 and value not in self._secrets:
                self._secrets.append(value)
        self._secrets.sort(key=len, reverse=True)  # longest first, so parts don't leak

    def __call__(self, text: str) -> str:
        for value in self._secrets:
            if value in text:
                text = text.replace(value, "***")
        text = _PATTERNS[0].sub("sk-***", text)
        text = _PATTERNS[1].sub(r"\1:***@", text)
        text = _PATTERNS[2].sub("***", text)
        text = _PATTERNS[3].sub(r"\1***", text)
        return text


REDACTOR = Redactor()


def _patch(record: Any) -> None:
    record["message"] = REDACTOR(record["message"])
    if record["extra"]:
        record["extra"] = {k: REDACTOR(str(v)) for k, v in record["extra"].items()}
    exception = record["exception"]
    if exception is not None and exception.value is not None:
        redacted = REDACTOR(str(exception.value))
        if redacted != str(exception.value):
            # keep the type and traceback, drop the secret-bearing text
            record["exception"] = exception._replace(value=type(exception.value)(redacted))


_CONSOLE_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss}</green> | <level>{level: <7}</level> | "
    "<cyan>{name}</cyan> - <level>{message}</level>"
)
_FILE_FORMAT = "{time:YYYY-MM-DDTHH:mm:ss.SSSZZ} | {level: <7} | {name}:{line} - {message}"


def setup_logging(
    *,
    level: str = "INFO",
    data_dir: Path | None = None,
    secrets: Iterable[str] = (),
    console: bool = True,
) -> Path | None:
    """Configure the one logger; return the log file path (None without a data dir).

    Safe to call more than once (each call replaces the sinks).
    """
    REDACTOR.add(secrets)
    logger.remove()
    logger.configure(patcher=_patch)
    if console:
        logger.add(sys.stderr, level=level, format=_CONSOLE_FORMAT, diagnose=False, backtrace=False)
    if data_dir is None:
        return None
    # owner-only: the log holds the trading history (kmg_autotrader.fs)
    log_dir = private_dir(Path(data_dir) / "logs")
    path = log_dir / "kmg.log"
    tighten(path)
    logger.add(
        path,
        opener=private_opener,
        level="DEBUG",
        format=_FILE_FORMAT,
        rotation="20 MB",
        retention=10,
        compression="gz",
        enqueue=False,
        diagnose=False,
        backtrace=False,
        encoding="utf-8",
    )
    warn_if_shared(Path(data_dir))
    return path
