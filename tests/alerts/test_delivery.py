"""End-to-end delivery through Apprise to loopback endpoints, with outcomes stored."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import apprise.plugins.discord as apprise_discord
import apprise.plugins.telegram as apprise_telegram
import pytest

from kmg_autotrader.alerts import AlertEvent, AlertService, AlertTarget, AppriseNotifier
from kmg_autotrader.config import Settings
from kmg_autotrader.domain import Mode
from kmg_autotrader.storage.repositories import Repositories
from tests.alerts.conftest import FakeEndpoint

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
CHAT_ID = "-1001234567890"
FAST: dict[str, Any] = {"connect_timeout": 0.5, "read_timeout": 0.5, "attempts": 2, "backoff": 0.01}


def _service(targets: list[AlertTarget], repos: Repositories | None) -> AlertService:
    notifier = AppriseNotifier(targets, **FAST)
    assert not notifier.problems
    return AlertService(Mode.PAPER, notifier, repos.alerts if repos else None, dedupe_window=60)


async def test_json_target_receives_the_formatted_message(
    endpoint: FakeEndpoint, repos: Repositories
) -> None:
    service = _service([AlertTarget("extra#1:json", f"json://{endpoint.base}/hook")], repos)
    service.start()
    assert service.send(
        AlertEvent.ORDER_FILLED,
        symbol="BTC/USDT",
        side="buy",
        amount=0.0125,
        price=64000.5,
        order_id="c-1",
    )
    await service.stop(timeout=5)

    assert len(endpoint.requests) == 1
    got = endpoint.requests[0]
    assert got.path == "/hook"
    assert got.body["title"] == "[PAPER] BUY filled BTC/USDT"
    assert "Bought 0.0125 BTC @ 64,000.5 USDT" in got.body["message"]
    assert got.body["type"] == "success"
    rows = repos.alerts.recent(Mode.PAPER)
    assert [(r["event"], r["status"]) for r in rows] == [("order_filled", "sent")]
    assert rows[0]["sent_at"] is not None and rows[0]["error"] is None


async def test_telegram_plugin_pointed_at_loopback(
    endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the network edge: Apprise builds https://api.telegram.org/bot<TOKEN>/sendMessage from this
    monkeypatch.setattr(
        apprise_telegram.NotifyTelegram, "notify_url", f"http://{endpoint.base}/bot"
    )
    settings = Settings(_env_file=None, telegram_token=BOT_TOKEN, telegram_chat_id=CHAT_ID)
    service = AlertService.from_settings(settings, None, notifier_options=FAST)
    assert service.notifier.labels == ["telegram"]
    service.start()
    service.send(
        AlertEvent.POSITION_EXITED,
        symbol="ETH/USDT",
        amount=0.5,
        entry_price=3000,
        exit_price=3100,
        pnl=49.2,
        pnl_pct=3.28,
        reason="take profit",
    )
    await service.stop(timeout=5)

    assert len(endpoint.requests) == 1
    got = endpoint.requests[0]
    assert got.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert str(got.body["chat_id"]) == CHAT_ID
    text = got.body["text"]
    assert "[PAPER] Exit ETH/USDT +49.2 USDT (+3.28%)" in text
    assert "take profit" in text
    assert service.stats.sent == 1


async def test_discord_webhook_setting_pointed_at_loopback(
    endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        apprise_discord.NotifyDiscord, "notify_url", f"http://{endpoint.base}/api/webhooks"
    )
    endpoint.status = 204
    settings = Settings(
        _env_file=None,
        discord_webhook_url="https://discord.com/api/webhooks/417429632418316298/"
        "JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711o33MyqU344Qpgv7YTpadV_js",
    )
    service = AlertService.from_settings(settings, None, notifier_options=FAST)
    service.start()
    service.send(AlertEvent.KILL_SWITCH, reason="daily loss limit reached")
    await service.stop(timeout=5)

    assert len(endpoint.requests) == 1
    got = endpoint.requests[0]
    assert got.path.startswith("/api/webhooks/417429632418316298/JHZ7lQml")
    assert "KILL SWITCH" in str(got.body)
    assert "daily loss limit reached" in str(got.body)


async def test_refused_endpoint_never_slows_the_caller_and_failure_is_stored(
    refused_port: int, repos: Repositories, capfd: pytest.CaptureFixture[str]
) -> None:
    secret_path = "s3cr3t-webhook-token"
    service = _service(
        [AlertTarget("extra#1:json", f"json://127.0.0.1:{refused_port}/{secret_path}")], repos
    )
    service.start()
    started = time.perf_counter()
    for i in range(20):
        service.send(AlertEvent.TRADE_ERROR, symbol="BTC/USDT", error=f"timeout #{i}")
    elapsed = time.perf_counter() - started
    assert elapsed < 0.05  # 20 enqueues; delivery happens elsewhere
    await service.stop(timeout=10)

    rows = repos.alerts.recent(Mode.PAPER, limit=100)
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and service.stats.failed == len(failed)
    assert all(secret_path not in (r["error"] or "") for r in rows)
    assert secret_path not in capfd.readouterr().err


async def test_hanging_endpoint_never_slows_the_caller(
    hanging_port: int, repos: Repositories
) -> None:
    notifier = AppriseNotifier(
        [AlertTarget("extra#1:json", f"json://127.0.0.1:{hanging_port}/x")],
        connect_timeout=0.3,
        read_timeout=0.3,
        attempts=1,
    )
    service = AlertService(Mode.LIVE, notifier, repos.alerts)
    service.start()
    started = time.perf_counter()
    assert service.send(AlertEvent.FEED_DEGRADED, feed="websocket", status="stale")
    assert time.perf_counter() - started < 0.01
    # the loop stays responsive while the worker waits on the dead server
    tick = time.perf_counter()
    await asyncio.sleep(0.05)
    assert time.perf_counter() - tick < 0.2
    await service.stop(timeout=5)

    rows = repos.alerts.recent(Mode.LIVE)
    assert [r["status"] for r in rows] == ["failed"]
    assert rows[0]["title"] == "[LIVE] Data feed websocket: stale"


async def test_stop_with_a_hung_delivery_returns_within_its_timeout(
    hanging_port: int, repos: Repositories
) -> None:
    notifier = AppriseNotifier(
        [AlertTarget("extra#1:json", f"json://127.0.0.1:{hanging_port}/x")],
        connect_timeout=0.6,
        read_timeout=0.6,
        attempts=1,
    )
    service = AlertService(Mode.PAPER, notifier, repos.alerts)
    service.start()
    service.send(AlertEvent.SYSTEM, message="one")
    service.send(AlertEvent.SYSTEM, message="two")
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await service.stop(timeout=0.2)
    assert time.perf_counter() - started < 1.0
    assert service.stats.dropped == 1  # "two" never got its turn
    rows = repos.alerts.recent(Mode.PAPER)
    assert sorted((r["status"], r["error"]) for r in rows) == [
        ("dropped", "alert service stopped"),
        ("failed", "cancelled at shutdown"),
    ]
