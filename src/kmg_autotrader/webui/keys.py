"""Web credentials: the API token and the session signing key. There is no built-in default.

* ``API_TOKEN`` set: it is the bearer token and the login password.
* ``API_TOKEN`` unset and ``WEB_HOST`` loopback: a one-time token is generated at every start and
  written to ``DATA_DIR/web_api_token`` (mode 0600); the log says where, never what. Every
  endpoint (state-changing ones included) still needs it.
* ``API_TOKEN`` unset and ``WEB_HOST`` not loopback: :class:`WebSecurityError`, the app refuses
  to start.
* ``WEB_SECRET_KEY`` unset: a random signing key is generated once and kept in
  ``DATA_DIR/web_secret.key`` (mode 0600), so sessions survive a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from loguru import logger

from kmg_autotrader.config import Settings
from kmg_autotrader.logging_setup import REDACTOR

TOKEN_FILE = "web_api_token"
SECRET_KEY_FILE = "web_secret.key"
MIN_SECRET_KEY_LENGTH = 16


class WebSecurityError(Exception):
    """The web app must not start with these settings; the message says what to change."""


@dataclass(frozen=True)
class WebCredentials:
    """The resolved token and signing key. ``repr`` never shows either value."""

    api_token: str = field(repr=False)
    secret_key: bytes = field(repr=False)
    token_source: Literal["settings", "generated"] = "settings"
    token_file: Path | None = None

    def token_matches(self, candidate: str | None) -> bool:
        """Constant-time comparison of a presented token with the API token."""
        if not candidate:
            return False
        return hmac.compare_digest(candidate.encode("utf-8"), self.api_token.encode("utf-8"))

    @property
    def token_fingerprint(self) -> str:
        """A keyed digest of the token: sessions carry it, so changing the token logs out."""
        digest = hmac.new(self.secret_key, self.api_token.encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:24]


def _write_private(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` readable by the owner only (0600), replacing it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to an existing file
        os.write(fd, content.encode("utf-8"))
    finally:
        os.close(fd)


def _load_or_create_secret_key(settings: Settings) -> bytes:
    if settings.web_secret_key is not None:
        raw = settings.web_secret_key.get_secret_value()
        if len(raw) < MIN_SECRET_KEY_LENGTH:
            raise WebSecurityError(
                f"WEB_SECRET_KEY is too short: use at least {MIN_SECRET_KEY_LENGTH} characters "
                "(or unset it and a random key is generated)"
            )
        return raw.encode("utf-8")
    path = Path(settings.data_dir) / SECRET_KEY_FILE
    if path.is_file():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning("{} was readable by others (mode {:o}); set it to 0600", path, mode)
            path.chmod(0o600)
        key = path.read_text(encoding="utf-8").strip()
        if len(key) >= MIN_SECRET_KEY_LENGTH:
            return key.encode("utf-8")
        logger.warning("{} holds no usable key; generating a new one", path)
    key = secrets.token_hex(32)
    _write_private(path, key + "\n")
    logger.info("generated the web session signing key in {} (mode 0600)", path)
    return key.encode("utf-8")


def prepare_credentials(settings: Settings) -> WebCredentials:
    """Resolve the token and signing key for ``settings``, refusing unsafe combinations."""
    if settings.api_token is None and not settings.web_is_loopback:
        raise WebSecurityError(
            f"WEB_HOST={settings.web_host} is not a loopback address and API_TOKEN is not set: "
            "set API_TOKEN (a long random string) or bind to 127.0.0.1"
        )
    secret_key = _load_or_create_secret_key(settings)
    if settings.api_token is not None:
        token = settings.api_token.get_secret_value()
        if len(token) < 16:
            logger.warning("API_TOKEN is short; use at least 16 random characters")
        return WebCredentials(api_token=token, secret_key=secret_key)
    token = secrets.token_urlsafe(32)
    REDACTOR.add([token])  # the log must never show it
    path = Path(settings.data_dir) / TOKEN_FILE
    _write_private(path, token + "\n")
    logger.warning(
        "API_TOKEN is not set: generated a one-time dashboard token for this run in {} "
        "(mode 0600); log in with its content",
        path.resolve(),
    )
    return WebCredentials(
        api_token=token, secret_key=secret_key, token_source="generated", token_file=path
    )
