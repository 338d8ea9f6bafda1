"""Turn the alert settings into Apprise URLs.

The URLs carry bot tokens and webhook secrets, so they live only in :class:`AlertTarget`
objects whose ``repr`` and ``label`` show the scheme and a position, never the URL itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import SecretStr

from kmg_autotrader.config import Settings

_DISCORD_WEBHOOK = re.compile(
    r"^https?://(?:(?:canary|ptb)\.)?discord(?:app)?\.com/api/(?:v\d+/)?webhooks/"
    r"(?P<id>\d+)/(?P<token>[A-Za-z0-9_\-]+)/?(?:\?.*)?$"
)


@dataclass(frozen=True)
class AlertTarget:
    """One Apprise URL with a log-safe label (e.g. ``telegram``, ``extra#2:json``)."""

    label: str
    url: str = field(repr=False)

    @property
    def secrets(self) -> list[str]:
        """Parts of the URL that must never appear in a log or a stored error."""
        parts = [self.url]
        body = self.url.split("://", 1)[-1].split("?", 1)[0]
        parts.extend(p for p in re.split(r"[/@:]", body) if len(p) >= 6)
        return parts


def discord_webhook_to_apprise(url: str) -> str:
    """``https://discord.com/api/webhooks/ID/TOKEN`` → ``discord://ID/TOKEN``.

    An URL that is already ``discord://…`` passes through; anything else raises ``ValueError``
    (without echoing the URL, which holds the token).
    """
    url = url.strip()
    if url.startswith("discord://"):
        return url
    match = _DISCORD_WEBHOOK.match(url)
    if not match:
        raise ValueError("DISCORD_WEBHOOK_URL is not a Discord webhook URL")
    return f"discord://{match['id']}/{match['token']}"


def telegram_url(token: str, chat_id: str) -> str:
    """The Apprise URL for a bot token and a chat id."""
    token = token.strip().removeprefix("bot")
    return f"tgram://{token}/{chat_id.strip()}"


def split_urls(raw: str) -> list[str]:
    """Comma-separated Apprise URLs (blank entries ignored)."""
    return [part.strip() for part in raw.split(",") if part.strip()]


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def targets_from_settings(settings: Settings) -> tuple[list[AlertTarget], list[str]]:
    """Targets configured in the settings, and a log-safe problem line for each bad one."""
    targets: list[AlertTarget] = []
    problems: list[str] = []
    token = _secret(settings.telegram_token)
    if token and settings.telegram_chat_id:
        targets.append(AlertTarget("telegram", telegram_url(token, settings.telegram_chat_id)))
    webhook = _secret(settings.discord_webhook_url)
    if webhook:
        try:
            targets.append(AlertTarget("discord", discord_webhook_to_apprise(webhook)))
        except ValueError as exc:
            problems.append(str(exc))
    for index, url in enumerate(split_urls(_secret(settings.alert_urls)), start=1):
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        targets.append(AlertTarget(f"extra#{index}:{scheme}", url))
    return targets, problems
