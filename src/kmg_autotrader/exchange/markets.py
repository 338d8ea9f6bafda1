"""ccxt market structures → :class:`~kmg_autotrader.domain.MarketInfo`, and market snapshots.

A snapshot is a JSON file holding ccxt's unified markets so that risk, execution and tests can
work without loading markets over the network. Both our own envelope
(``{"exchange": ..., "markets": {...}}``) and a bare ``{symbol: market}`` dict are accepted.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger

from kmg_autotrader.domain import MarketInfo

_FALLBACK_STEP = Decimal("1e-8")


# ccxt's precision modes (ccxt.base.decimal_to_precision), copied so that reading a markets
# snapshot (backtests, the paper exchange) does not import ccxt; a test pins them to ccxt's.
DECIMAL_PLACES = 2
SIGNIFICANT_DIGITS = 3
TICK_SIZE = 4


def _to_decimal(value: Any, default: Decimal = Decimal(0)) -> Decimal:
    if value is None:
        return default
    return Decimal(str(value))


def precision_to_step(value: Any, precision_mode: int) -> Decimal:
    """A ccxt precision value as a tick size (``0.001``), whatever the exchange's mode."""
    if value is None:
        return _FALLBACK_STEP
    if precision_mode == TICK_SIZE:
        return Decimal(str(value))
    if precision_mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(value))
    if precision_mode == SIGNIFICANT_DIGITS:
        # A step depends on the magnitude of the number; ccxt's helpers round correctly,
        # the step here is only a conservative hint for sizing.
        logger.debug("significant-digits precision {}; using fallback step", value)
        return _FALLBACK_STEP
    return Decimal(str(value))


def market_info_from_ccxt(market: dict[str, Any], precision_mode: int) -> MarketInfo:
    """Build a :class:`MarketInfo` from one ccxt unified market."""
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    amount_limits = limits.get("amount") or {}
    cost_limits = limits.get("cost") or {}
    return MarketInfo(
        symbol=str(market["symbol"]),
        base=str(market.get("base") or market["symbol"].split("/")[0]),
        quote=str(market.get("quote") or market["symbol"].split("/")[1]),
        amount_step=precision_to_step(precision.get("amount"), precision_mode),
        price_step=precision_to_step(precision.get("price"), precision_mode),
        min_amount=_to_decimal(amount_limits.get("min")),
        min_cost=_to_decimal(cost_limits.get("min")),
        maker_fee=_to_decimal(market.get("maker"), Decimal("0.001")),
        taker_fee=_to_decimal(market.get("taker"), Decimal("0.001")),
    )


def save_markets_snapshot(path: Path | str, exchange_id: str, markets: dict[str, Any]) -> Path:
    """Write ccxt markets to ``path`` atomically; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "exchange": exchange_id,
        "saved_at": int(time.time() * 1000),
        "markets": markets,
    }
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, default=str)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_markets_snapshot(path: Path | str) -> tuple[str | None, dict[str, Any]]:
    """Read a snapshot: ``(exchange id or None, {symbol: ccxt market})``.

    Raises ``ValueError`` naming the file when it is not a markets snapshot.
    """
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read markets snapshot {source}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("markets"), dict):
        exchange_id = data.get("exchange")
        markets = data["markets"]
    elif isinstance(data, dict):
        exchange_id, markets = None, data
    else:
        raise ValueError(f"{source} is not a markets snapshot (expected a JSON object)")
    for symbol, market in markets.items():
        if not isinstance(market, dict) or "symbol" not in market or "precision" not in market:
            raise ValueError(f"{source}: entry {symbol!r} is not a ccxt market")
    return (str(exchange_id) if exchange_id else None), markets
