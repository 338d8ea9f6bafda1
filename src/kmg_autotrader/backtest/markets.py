"""Market rules (precision, minimums, fees) for the symbols of a backtest.

A stored markets snapshot (``DATA_DIR/markets/<exchange>.json``) is used when it lists the
symbol; otherwise a conservative market is derived from the prices (seven significant digits
of price, amount steps worth about a cent, a 5-unit minimum order on fiat-like quotes) with
the exchange's default fee tier, so minimums are always enforced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import pandas as pd
from loguru import logger

from kmg_autotrader.domain import MarketInfo
from kmg_autotrader.exchange.markets import load_markets_snapshot, market_info_from_ccxt
from kmg_autotrader.execution.fees import fee_schedule

_FIAT_LIKE = {"USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USD", "EUR", "GBP"}


def _pow10(exponent: int) -> Decimal:
    return Decimal(1).scaleb(exponent)


def derived_market(symbol: str, candles: pd.DataFrame, exchange: str) -> MarketInfo:
    """A market for ``symbol`` derived from its price range and the exchange's fee tier."""
    base, _, quote = symbol.partition("/")
    low = float(candles["low"].min()) if len(candles) else 1.0
    high = float(candles["high"].max()) if len(candles) else 1.0
    price_step = _pow10(math.floor(math.log10(max(low, 1e-12))) - 6)
    amount_step = _pow10(math.floor(math.log10(0.01 / max(high, 1e-12))))
    fees = fee_schedule(exchange)
    return MarketInfo(
        symbol=symbol,
        base=base,
        quote=quote,
        amount_step=amount_step,
        price_step=price_step,
        min_amount=amount_step,
        min_cost=Decimal(5) if quote.upper() in _FIAT_LIKE else Decimal(0),
        maker_fee=fees.maker,
        taker_fee=fees.taker,
    )


def backtest_markets(
    frames: Mapping[str, pd.DataFrame], exchange: str, data_dir: Path | None = None
) -> dict[str, MarketInfo]:
    """Markets for every symbol of ``frames`` (snapshot first, else derived)."""
    snapshot: dict[str, object] = {}
    if data_dir is not None:
        path = Path(data_dir) / "markets" / f"{exchange.lower()}.json"
        if path.is_file():
            try:
                _, snapshot = load_markets_snapshot(path)
            except ValueError as exc:
                logger.warning("backtest: ignoring markets snapshot: {}", exc)
    out: dict[str, MarketInfo] = {}
    for symbol, candles in frames.items():
        raw = snapshot.get(symbol)
        if isinstance(raw, dict):
            from ccxt.base.decimal_to_precision import TICK_SIZE

            out[symbol] = market_info_from_ccxt(raw, int(raw.get("precisionMode", TICK_SIZE)))
        else:
            out[symbol] = derived_market(symbol, candles, exchange)
    return out
