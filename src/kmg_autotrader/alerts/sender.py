"""Delivery through Apprise: one Apprise object per target, retried a little with tenacity.

Each target is notified and retried on its own, so a dead Discord webhook never makes the
Telegram message go out twice. Apprise's blocking ``notify`` runs in a worker thread with short
socket timeouts; errors are scrubbed of the URL secrets before anyone sees them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import apprise
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from kmg_autotrader.alerts.events import AlertMessage, Severity
from kmg_autotrader.alerts.targets import AlertTarget

_NOTIFY_TYPES = {
    Severity.INFO: apprise.NotifyType.INFO,
    Severity.SUCCESS: apprise.NotifyType.SUCCESS,
    Severity.WARNING: apprise.NotifyType.WARNING,
    Severity.FAILURE: apprise.NotifyType.FAILURE,
}


class AlertDeliveryError(Exception):
    """One target refused or could not be reached (message is already scrubbed)."""


@dataclass
class DeliveryReport:
    """Which targets got the message, and the scrubbed error of each that did not."""

    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when at least one target got the message."""
        return bool(self.delivered)

    def error_text(self) -> str | None:
        """One line naming the failed targets and why (None when all succeeded)."""
        if not self.failed:
            return None
        return "; ".join(f"{label}: {error}" for label, error in self.failed.items())


class Notifier(Protocol):
    """What :class:`AlertService` sends through (Apprise in production, fakes in tests)."""

    @property
    def labels(self) -> list[str]:
        """Log-safe names of the targets (empty: nothing configured)."""
        ...

    async def deliver(self, message: AlertMessage) -> DeliveryReport:
        """Send ``message`` to every target; never raises."""
        ...


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Replace every secret (longest first) by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


@dataclass
class _Loaded:
    target: AlertTarget
    apobj: apprise.Apprise


class AppriseNotifier:
    """Sends to Apprise targets, each retried up to ``attempts`` times with short backoff."""

    def __init__(
        self,
        targets: Sequence[AlertTarget],
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.5,
        app_id: str = "KMG Autotrader",
    ) -> None:
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.call_timeout = connect_timeout + read_timeout + 1.0
        self.problems: list[str] = []
        self._loaded: list[_Loaded] = []
        # memory store: Apprise must not write state files next to the user's data
        asset = apprise.AppriseAsset(app_id=app_id, storage_mode="memory")
        for target in targets:
            plugin = apprise.Apprise.instantiate(target.url, asset=asset)
            if plugin is None:
                self.problems.append(f"alert target {target.label} is not a valid Apprise URL")
                continue
            # short timeouts: a hung endpoint costs seconds of the worker, never the caller
            plugin.socket_connect_timeout = connect_timeout
            plugin.socket_read_timeout = read_timeout
            apobj = apprise.Apprise(asset=asset)
            apobj.add(plugin)
            self._loaded.append(_Loaded(target, apobj))

    @property
    def labels(self) -> list[str]:
        """Log-safe names of the usable targets."""
        return [loaded.target.label for loaded in self._loaded]

    async def deliver(self, message: AlertMessage) -> DeliveryReport:
        """Send to each target in turn; collect what worked and what did not."""
        report = DeliveryReport()
        for loaded in self._loaded:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.attempts),
                    wait=wait_exponential(multiplier=self.backoff, max=4.0),
                    retry=retry_if_exception_type(AlertDeliveryError),
                    reraise=True,
                ):
                    with attempt:
                        await asyncio.to_thread(self._notify_once, loaded, message)
                report.delivered.append(loaded.target.label)
            except Exception as exc:
                text = str(exc) or type(exc).__name__
                report.failed[loaded.target.label] = scrub(text, loaded.target.secrets)[:500]
        return report

    def _notify_once(self, loaded: _Loaded, message: AlertMessage) -> None:
        """One blocking Apprise call (runs in a thread)."""
        logs: list[str] = []

        def collect(entry: Any, _service: Any) -> None:
            if getattr(entry, "level", "") in ("WARNING", "ERROR", "CRITICAL"):
                logs.append(str(getattr(entry, "message", "")))

        try:
            result = loaded.apobj.notify(
                body=message.body,
                title=message.title,
                notify_type=_NOTIFY_TYPES.get(message.severity, apprise.NotifyType.INFO),
                body_format=apprise.NotifyFormat.TEXT,
                timeout=self.call_timeout,
                log_callback=collect,
            )
        except Exception as exc:  # Apprise or a plug-in bug must not escape as a crash
            raise AlertDeliveryError(f"{type(exc).__name__}: {exc}") from None
        if not result:
            detail = logs[-1] if logs else "notification failed"
            raise AlertDeliveryError(scrub(detail, loaded.target.secrets))
