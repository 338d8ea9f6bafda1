"""Settings → Apprise URLs, without ever exposing a secret in a label or a message."""

from __future__ import annotations

import pytest

from kmg_autotrader.alerts import (
    AppriseNotifier,
    discord_webhook_to_apprise,
    targets_from_settings,
    telegram_url,
)
from kmg_autotrader.config import Settings

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"


def test_telegram_url() -> None:
    assert telegram_url(TOKEN, "42") == f"tgram://{TOKEN}/42"
    assert telegram_url(f"bot{TOKEN}", " 42 ") == f"tgram://{TOKEN}/42"


@pytest.mark.parametrize(
    "url",
    [
        "https://discord.com/api/webhooks/417429632418316298/abc_DEF-123",
        "https://discordapp.com/api/webhooks/417429632418316298/abc_DEF-123/",
        "https://canary.discord.com/api/v10/webhooks/417429632418316298/abc_DEF-123?wait=true",
        "discord://417429632418316298/abc_DEF-123",
    ],
)
def test_discord_webhook_to_apprise(url: str) -> None:
    assert discord_webhook_to_apprise(url) == "discord://417429632418316298/abc_DEF-123"


def test_bad_discord_url_does_not_echo_the_secret() -> None:
    with pytest.raises(ValueError) as err:
        discord_webhook_to_apprise("https://example.com/hooks/secret-token-xyz")
    assert "secret-token-xyz" not in str(err.value)


def test_targets_from_settings() -> None:
    settings = Settings(
        _env_file=None,
        telegram_token=TOKEN,
        telegram_chat_id="42",
        discord_webhook_url="https://discord.com/api/webhooks/1/tok-en",
        alert_urls="json://127.0.0.1:9/a , ,mailto://u:p@example.com",
    )
    targets, problems = targets_from_settings(settings)
    assert problems == []
    assert [t.label for t in targets] == ["telegram", "discord", "extra#1:json", "extra#2:mailto"]
    assert [t.url for t in targets] == [
        f"tgram://{TOKEN}/42",
        "discord://1/tok-en",
        "json://127.0.0.1:9/a",
        "mailto://u:p@example.com",
    ]
    assert TOKEN not in repr(targets)


def test_no_settings_no_targets() -> None:
    targets, problems = targets_from_settings(Settings(_env_file=None))
    assert targets == [] and problems == []
    assert AppriseNotifier(targets).labels == []


def test_invalid_discord_and_apprise_urls_are_reported_safely() -> None:
    settings = Settings(
        _env_file=None,
        discord_webhook_url="https://nope.example/secret-abcdef",
        alert_urls="notascheme://secret-ghijkl",
    )
    targets, problems = targets_from_settings(settings)
    notifier = AppriseNotifier(targets)
    lines = problems + notifier.problems
    assert len(lines) == 2
    assert notifier.labels == []
    assert not any("secret" in line for line in lines)
