"""Every indicator the rules and regimes read, over a history and one closed candle at a time.

:class:`IndicatorEngine` is the one place that knows how each column is made:

* :meth:`IndicatorEngine.warm_up` computes all columns over a whole history (the vectorised
  path: one TA-Lib batch call per column) and keeps each TA-Lib stream's state;
* :meth:`IndicatorEngine.update` then advances every column by one closed candle in O(1).

Columns derived in Python (ATR%, log returns, choppiness…) use the same IEEE operations in both
paths (``talib.LN``/``LOG10`` in batch are libm's ``log``/``log10``, like :mod:`math`), so a
history warmed up to candle *k* and updated candle by candle gives exactly the numbers of one
batch run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import talib

from kmg_autotrader.signals.indicators.nodes import NAN, FloatArray, TalibNode
from kmg_autotrader.signals.params import SignalParams

#: Raw candle columns carried in every frame.
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")

#: Indicator columns, in a stable order (the frame and snapshots use these names).
INDICATOR_COLUMNS = (
    "sma_fast",
    "sma_slow",
    "ema",
    "rsi",
    "atr",
    "atr_pct",
    "atr_pct_base",
    "vol_ratio",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "adx",
    "plus_di",
    "minus_di",
    "chop",
    "rvol",
    "volume_z",
    "hh_prev",
    "ll_prev",
)

Frame = dict[str, FloatArray]


def true_range(high: float, low: float, prev_close: float) -> float:
    """TA-Lib's ``TRANGE`` for one candle (same comparisons, so bit-identical)."""
    greatest = high - low
    val2 = abs(prev_close - high)
    if val2 > greatest:
        greatest = val2
    val3 = abs(prev_close - low)
    if val3 > greatest:
        greatest = val3
    return greatest


def _div(num: FloatArray, den: FloatArray, zero: float) -> FloatArray:
    """``num / den`` with ``zero`` where ``den`` is 0 (NaN stays NaN)."""
    # one plain division (a NaN operand gives NaN), then only the zero denominators fixed
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(num, den)
    zero_den = den == 0
    if zero_den.any():
        out[zero_den & ~np.isnan(num)] = zero
    return out


def _sdiv(num: float, den: float, zero: float) -> float:
    """Scalar twin of :func:`_div`."""
    if math.isnan(num) or math.isnan(den):
        return NAN
    return num / den if den != 0 else zero


class IndicatorEngine:
    """Indicator state for one symbol: warm up on history, then update per closed candle."""

    def __init__(self, params: SignalParams) -> None:
        p = params
        self.params = p
        self._sma_fast = TalibNode("SMA", p.sma_fast, timeperiod=p.sma_fast)
        self._sma_slow = TalibNode("SMA", p.sma_slow, timeperiod=p.sma_slow)
        self._ema = TalibNode("EMA", p.ema_period, timeperiod=p.ema_period)
        self._rsi = TalibNode("RSI", p.rsi_period, timeperiod=p.rsi_period)
        self._atr = TalibNode("ATR", p.atr_period, timeperiod=p.atr_period)
        self._atr_base = TalibNode("SMA", p.vol_baseline_period, timeperiod=p.vol_baseline_period)
        self._bb = TalibNode(
            "BBANDS",
            p.bb_period,
            p.bb_std,
            p.bb_std,
            n_outputs=3,
            timeperiod=p.bb_period,
            nbdevup=p.bb_std,
            nbdevdn=p.bb_std,
        )
        self._adx = TalibNode("ADX", p.adx_period, timeperiod=p.adx_period)
        self._pdi = TalibNode("PLUS_DI", p.adx_period, timeperiod=p.adx_period)
        self._mdi = TalibNode("MINUS_DI", p.adx_period, timeperiod=p.adx_period)
        self._tr_sum = TalibNode("SUM", p.chop_period, timeperiod=p.chop_period)
        self._chop_hh = TalibNode("MAX", p.chop_period, timeperiod=p.chop_period)
        self._chop_ll = TalibNode("MIN", p.chop_period, timeperiod=p.chop_period)
        self._rv = TalibNode("STDDEV", p.rv_period, 1.0, timeperiod=p.rv_period, nbdev=1.0)
        self._vol_ma = TalibNode("SMA", p.volume_period, timeperiod=p.volume_period)
        self._vol_sd = TalibNode(
            "STDDEV", p.volume_period, 1.0, timeperiod=p.volume_period, nbdev=1.0
        )
        self._hh = TalibNode("MAX", p.breakout_period, timeperiod=p.breakout_period)
        self._ll = TalibNode("MIN", p.breakout_period, timeperiod=p.breakout_period)
        self._log_chop_n = math.log10(p.chop_period)
        self._prev_close = NAN
        self._prev_hh = NAN
        self._prev_ll = NAN
        self.count = 0

    # ---- vectorised path ---------------------------------------------------------------------

    def warm_up(
        self,
        open_: FloatArray,
        high: FloatArray,
        low: FloatArray,
        close: FloatArray,
        volume: FloatArray,
    ) -> Frame:
        """Compute every column over the whole history and keep the state for :meth:`update`."""
        o, h, lo, c, v = (
            np.ascontiguousarray(a, dtype=np.float64) for a in (open_, high, low, close, volume)
        )
        n = len(c)
        frame: Frame = {"open": o, "high": h, "low": lo, "close": c, "volume": v}
        frame["sma_fast"] = self._sma_fast.warm_up(c)[0]
        frame["sma_slow"] = self._sma_slow.warm_up(c)[0]
        frame["ema"] = self._ema.warm_up(c)[0]
        frame["rsi"] = self._rsi.warm_up(c)[0]
        atr = self._atr.warm_up(h, lo, c)[0]
        frame["atr"] = atr
        atr_pct = atr / c
        frame["atr_pct"] = atr_pct
        base = self._atr_base.warm_up(atr_pct)[0]
        frame["atr_pct_base"] = base
        frame["vol_ratio"] = _div(atr_pct, base, NAN)
        frame["bb_upper"], frame["bb_middle"], frame["bb_lower"] = self._bb.warm_up(c)
        frame["adx"] = self._adx.warm_up(h, lo, c)[0]
        frame["plus_di"] = self._pdi.warm_up(h, lo, c)[0]
        frame["minus_di"] = self._mdi.warm_up(h, lo, c)[0]
        tr = talib.TRANGE(h, lo, c) if n > 1 else np.full(n, NAN)
        tr_sum = self._tr_sum.warm_up(tr)[0]
        rng = self._chop_hh.warm_up(h)[0] - self._chop_ll.warm_up(lo)[0]
        ratio = _div(tr_sum, rng, NAN)
        chop = (100.0 * talib.LOG10(ratio)) / self._log_chop_n if n else ratio
        chop[(rng == 0) & ~np.isnan(tr_sum)] = 100.0  # a flat market is maximally choppy
        frame["chop"] = chop
        logret = np.full(n, NAN)
        if n > 1:
            logret[1:] = talib.LN(c[1:] / c[:-1])
        frame["rvol"] = self._rv.warm_up(logret)[0]
        vol_ma = self._vol_ma.warm_up(v)[0]
        vol_sd = self._vol_sd.warm_up(v)[0]
        frame["volume_z"] = _div(v - vol_ma, vol_sd, 0.0)
        hh = self._hh.warm_up(h)[0]
        ll = self._ll.warm_up(lo)[0]
        frame["hh_prev"] = np.concatenate(([NAN], hh[:-1])) if n else hh
        frame["ll_prev"] = np.concatenate(([NAN], ll[:-1])) if n else ll
        self.count = n
        if n:
            self._prev_close = float(c[-1])
            self._prev_hh = float(hh[-1])
            self._prev_ll = float(ll[-1])
        return frame

    # ---- incremental path --------------------------------------------------------------------

    def update(
        self, open_: float, high: float, low: float, close: float, volume: float
    ) -> dict[str, float]:
        """Advance every column by one closed candle and return that candle's values."""
        row: dict[str, float] = {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
        row["sma_fast"] = self._sma_fast.update(close)[0]
        row["sma_slow"] = self._sma_slow.update(close)[0]
        row["ema"] = self._ema.update(close)[0]
        row["rsi"] = self._rsi.update(close)[0]
        atr = self._atr.update(high, low, close)[0]
        row["atr"] = atr
        atr_pct = atr / close
        row["atr_pct"] = atr_pct
        base = self._atr_base.update(atr_pct)[0]
        row["atr_pct_base"] = base
        row["vol_ratio"] = _sdiv(atr_pct, base, NAN)
        row["bb_upper"], row["bb_middle"], row["bb_lower"] = self._bb.update(close)
        row["adx"] = self._adx.update(high, low, close)[0]
        row["plus_di"] = self._pdi.update(high, low, close)[0]
        row["minus_di"] = self._mdi.update(high, low, close)[0]
        prev_close = self._prev_close
        tr = true_range(high, low, prev_close) if self.count else NAN
        tr_sum = self._tr_sum.update(tr)[0]
        rng = self._chop_hh.update(high)[0] - self._chop_ll.update(low)[0]
        ratio = _sdiv(tr_sum, rng, NAN)
        if rng == 0 and not math.isnan(tr_sum):
            row["chop"] = 100.0
        elif math.isnan(ratio):
            row["chop"] = NAN
        else:
            row["chop"] = (100.0 * math.log10(ratio)) / self._log_chop_n
        logret = math.log(close / prev_close) if self.count else NAN
        row["rvol"] = self._rv.update(logret)[0]
        vol_ma = self._vol_ma.update(volume)[0]
        vol_sd = self._vol_sd.update(volume)[0]
        row["volume_z"] = _sdiv(volume - vol_ma, vol_sd, 0.0)
        row["hh_prev"] = self._prev_hh
        row["ll_prev"] = self._prev_ll
        self._prev_hh = self._hh.update(high)[0]
        self._prev_ll = self._ll.update(low)[0]
        self._prev_close = close
        self.count += 1
        return row

    def copy(self) -> IndicatorEngine:
        """An independent copy (for what-if evaluation without touching live state)."""
        clone = object.__new__(IndicatorEngine)
        for key, value in self.__dict__.items():
            setattr(clone, key, value.copy() if isinstance(value, TalibNode) else value)
        return clone


def compute_indicators(candles: Mapping[str, Any] | Any, params: SignalParams) -> Frame:
    """Vectorised path: all indicator columns over a history (DataFrame or mapping of arrays)."""
    cols = [np.asarray(candles[name], dtype=np.float64) for name in PRICE_COLUMNS]
    return IndicatorEngine(params).warm_up(*cols)
