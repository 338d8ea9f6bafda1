"""Alerts to Telegram, Discord and any other Apprise URL.

Usage (from the autopilot)::

    alerts = AlertService.from_settings(settings, repos.alerts)
    alerts.start()                      # inside the running event loop
    alerts.send(AlertEvent.ORDER_FILLED, symbol="BTC/USDT", side="buy", amount=0.01, price=64000)
    await alerts.stop(timeout=5)        # deliver what is queued, then stop
"""

from kmg_autotrader.alerts.events import AlertEvent, AlertMessage, Severity
from kmg_autotrader.alerts.messages import format_alert
from kmg_autotrader.alerts.sender import AppriseNotifier, DeliveryReport, Notifier
from kmg_autotrader.alerts.service import AlertService, AlertStats
from kmg_autotrader.alerts.targets import (
    AlertTarget,
    discord_webhook_to_apprise,
    targets_from_settings,
    telegram_url,
)

__all__ = [
    "AlertEvent",
    "AlertMessage",
    "AlertService",
    "AlertStats",
    "AlertTarget",
    "AppriseNotifier",
    "DeliveryReport",
    "Notifier",
    "Severity",
    "discord_webhook_to_apprise",
    "format_alert",
    "targets_from_settings",
    "telegram_url",
]
