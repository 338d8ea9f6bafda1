"""Market regime per candle from ADX (+DI/-DI), the choppiness index and ATR% vs its baseline.

Order of precedence (first match wins): unknown (warm-up) → high volatility → trend up/down →
chop → range. Regimes are returned as small integer codes (cheap over a year of candles);
:data:`REGIMES` maps a code back to :class:`~kmg_autotrader.domain.Regime`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kmg_autotrader.domain import Regime
from kmg_autotrader.signals.bars import Bars
from kmg_autotrader.signals.params import SignalParams

IntArray = np.ndarray[Any, np.dtype[np.int8]]

#: Code → regime. Index 0 is UNKNOWN so that zero-filled arrays mean "not classified".
REGIMES: tuple[Regime, ...] = (
    Regime.UNKNOWN,
    Regime.TREND_UP,
    Regime.TREND_DOWN,
    Regime.RANGE,
    Regime.HIGH_VOLATILITY,
    Regime.CHOP,
)
CODE: dict[Regime, int] = {regime: i for i, regime in enumerate(REGIMES)}


def classify(bars: Bars, params: SignalParams) -> IntArray:
    """Regime code of every row of ``bars``."""
    adx, pdi, mdi = bars["adx"], bars["plus_di"], bars["minus_di"]
    chop, ratio = bars["chop"], bars["vol_ratio"]
    known = ~(np.isnan(adx) | np.isnan(chop) | np.isnan(ratio) | np.isnan(pdi) | np.isnan(mdi))
    trending = adx >= params.adx_trend
    # np.select picks the first true condition, which encodes the precedence
    codes = np.select(
        [
            ~known,
            ratio >= params.high_vol_ratio,
            trending & (pdi > mdi),
            trending,
            chop >= params.chop_high,
        ],
        [
            CODE[Regime.UNKNOWN],
            CODE[Regime.HIGH_VOLATILITY],
            CODE[Regime.TREND_UP],
            CODE[Regime.TREND_DOWN],
            CODE[Regime.CHOP],
        ],
        default=CODE[Regime.RANGE],
    )
    return codes.astype(np.int8)


def regime_reason(regime: Regime, row: dict[str, float], params: SignalParams) -> str:
    """Why a candle got its regime, in words (for traces and the dashboard)."""
    if regime is Regime.UNKNOWN:
        return "not enough history for ADX / choppiness / ATR baseline"
    if regime is Regime.HIGH_VOLATILITY:
        return f"ATR% is {row['vol_ratio']:.1f}× its baseline (≥ {params.high_vol_ratio:g})"
    if regime in (Regime.TREND_UP, Regime.TREND_DOWN):
        return (
            f"ADX {row['adx']:.0f} ≥ {params.adx_trend:g}, +DI {row['plus_di']:.0f} "
            f"vs -DI {row['minus_di']:.0f}"
        )
    if regime is Regime.CHOP:
        return f"choppiness {row['chop']:.0f} ≥ {params.chop_high:g}"
    return f"ADX {row['adx']:.0f} < {params.adx_trend:g}, choppiness {row['chop']:.0f}"
