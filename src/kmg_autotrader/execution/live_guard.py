"""LIVE needs keys, ``TRADING_MODE=live`` and the ``--live`` flag together."""

from __future__ import annotations

from typing import Any

from kmg_autotrader.domain import Mode
from kmg_autotrader.execution.errors import LiveTradingRefusedError

_FLAG_LINE = "the --live flag must be given on the command line"


def ensure_live_allowed(settings: Any, live_flag: bool) -> None:
    """Return when the requested mode may run; raise :class:`LiveTradingRefusedError` otherwise.

    PAPER (``TRADING_MODE=paper`` and no ``--live``) always may. LIVE is asked for by either
    ``TRADING_MODE=live`` or ``--live``, and then needs both of them plus the exchange keys.
    The message lists everything missing, one item per line, and never shows a secret.
    """
    wants_live = live_flag or settings.trading_mode is Mode.LIVE
    if not wants_live:
        return
    missing = [line for line in settings.live_requirements_missing() if line != _FLAG_LINE]
    if not live_flag:
        missing.append(_FLAG_LINE)
    if missing:
        raise LiveTradingRefusedError(
            "refusing to trade LIVE on "
            + str(settings.exchange)
            + ": "
            + "; ".join(missing)
            + " (PAPER is the default: unset TRADING_MODE and drop --live to paper trade)"
        )
