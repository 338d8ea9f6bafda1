"""Validated parameters of the signal engine (indicators, rules, regimes, gates).

Every field is a flat scalar so that the model maps one-to-one onto environment variables
(``SIGNAL_SMA_FAST=20`` with ``env_prefix="SIGNAL_"``); :meth:`SignalParams.from_settings`
reads them from any settings object that carries ``signal_<field>`` attributes or a nested
``signal_params`` / ``signals`` model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kmg_autotrader.domain import Regime

Playbook = Literal["trend_following", "mean_reversion", "stand_aside"]

#: Settings prefix for the flat environment shape (``SIGNAL_SMA_FAST`` …).
ENV_PREFIX = "SIGNAL_"


class SignalParams(BaseModel):
    """All tunables of indicators, rules, regimes, the fee gate and the confidence gate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- indicators ----------------------------------------------------------------------------
    sma_fast: int = Field(20, ge=2, le=500, description="fast SMA period (candles)")
    sma_slow: int = Field(50, ge=3, le=2000, description="slow SMA period (candles)")
    ema_period: int = Field(50, ge=2, le=2000, description="EMA period (trend reference)")
    rsi_period: int = Field(14, ge=2, le=200)
    atr_period: int = Field(14, ge=2, le=200)
    bb_period: int = Field(20, ge=2, le=500)
    bb_std: float = Field(2.0, gt=0, le=5)
    adx_period: int = Field(14, ge=2, le=200)
    chop_period: int = Field(14, ge=2, le=200)
    vol_baseline_period: int = Field(100, ge=5, le=5000, description="SMA of ATR% baseline")
    rv_period: int = Field(20, ge=2, le=1000, description="realised-volatility window")
    volume_period: int = Field(20, ge=3, le=1000, description="volume z-score window")
    breakout_period: int = Field(20, ge=2, le=1000, description="range-breakout lookback")

    # --- rules ---------------------------------------------------------------------------------
    rsi_oversold: float = Field(30.0, gt=0, lt=100)
    rsi_overbought: float = Field(70.0, gt=0, lt=100)
    rsi_entry_max: float = Field(70.0, gt=0, le=100, description="no entry at or above")
    rsi_exit_above: float = Field(80.0, gt=0, le=100, description="sma_cross_rsi exit level")
    atr_expansion_ratio: float = Field(1.5, gt=1, le=10, description="ATR% / baseline trigger")
    volume_spike_z: float = Field(3.0, gt=0, le=20)

    # --- ATR volatility filter and exits -------------------------------------------------------
    atr_pct_min: float = Field(0.0005, ge=0, lt=1, description="min ATR/close to trade")
    atr_pct_max: float = Field(0.05, gt=0, le=1, description="max ATR/close to trade")
    atr_stop_mult: float = Field(2.0, gt=0, le=20)
    atr_target_mult: float = Field(3.0, gt=0, le=50)

    # --- regimes -------------------------------------------------------------------------------
    adx_trend: float = Field(25.0, gt=0, lt=100, description="ADX at/above: trending")
    adx_strong: float = Field(40.0, gt=0, lt=100, description="ADX at/above: strong trend")
    chop_high: float = Field(61.8, gt=0, lt=100, description="choppiness at/above: chop")
    high_vol_ratio: float = Field(2.5, gt=1, le=20, description="ATR% / baseline: high vol")
    playbook_trend_up: Playbook = "trend_following"
    playbook_trend_down: Playbook = "stand_aside"
    playbook_range: Playbook = "mean_reversion"
    playbook_high_volatility: Playbook = "stand_aside"
    playbook_chop: Playbook = "stand_aside"

    # --- symbol filter -------------------------------------------------------------------------
    symbol_allowlist: tuple[str, ...] = Field((), description="empty: every symbol")
    symbol_blocklist: tuple[str, ...] = ()

    # the fee gate's costs are the risk parameters' (slippage_bps, fee_safety_margin): the gate
    # and the risk manager's fee-edge rule are one computation (domain/fee_edge.py)

    # --- confidence gate -----------------------------------------------------------------------
    confidence_threshold: float = Field(0.55, ge=0, le=1)
    confidence_threshold_trend_up: float | None = Field(None, ge=0, le=1)
    confidence_threshold_trend_down: float | None = Field(None, ge=0, le=1)
    confidence_threshold_range: float | None = Field(None, ge=0, le=1)
    confidence_threshold_high_volatility: float | None = Field(0.75, ge=0, le=1)
    confidence_threshold_chop: float | None = Field(0.8, ge=0, le=1)
    boost_volume_spike: float = Field(0.10, ge=0, le=1)
    boost_strong_trend: float = Field(0.10, ge=0, le=1)
    penalty_high_volatility: float = Field(0.15, ge=0, le=1)
    penalty_chop: float = Field(0.15, ge=0, le=1)
    penalty_rsi_stretched: float = Field(0.10, ge=0, le=1, description="RSI near entry max")

    @model_validator(mode="after")
    def _cross_checks(self) -> SignalParams:
        problems: list[str] = []
        if self.sma_fast >= self.sma_slow:
            problems.append(f"sma_fast ({self.sma_fast}) must be below sma_slow ({self.sma_slow})")
        if self.rsi_oversold >= self.rsi_overbought:
            problems.append("rsi_oversold must be below rsi_overbought")
        if self.rsi_entry_max <= self.rsi_oversold:
            problems.append("rsi_entry_max must be above rsi_oversold")
        if self.rsi_exit_above < self.rsi_entry_max:
            problems.append("rsi_exit_above must be at or above rsi_entry_max")
        if self.atr_pct_min >= self.atr_pct_max:
            problems.append("atr_pct_min must be below atr_pct_max")
        if self.atr_target_mult <= 0 or self.atr_stop_mult <= 0:
            problems.append("ATR multiples must be positive")
        if self.adx_strong < self.adx_trend:
            problems.append("adx_strong must be at or above adx_trend")
        if self.high_vol_ratio < self.atr_expansion_ratio:
            problems.append("high_vol_ratio must be at or above atr_expansion_ratio")
        overlap = set(self.symbol_allowlist) & set(self.symbol_blocklist)
        if overlap:
            problems.append(f"symbols both allowed and blocked: {sorted(overlap)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # ---- derived views -----------------------------------------------------------------------

    def playbook_for(self, regime: Regime) -> Playbook:
        """The style of trading allowed in ``regime`` (``stand_aside`` when unknown)."""
        return {
            Regime.TREND_UP: self.playbook_trend_up,
            Regime.TREND_DOWN: self.playbook_trend_down,
            Regime.RANGE: self.playbook_range,
            Regime.HIGH_VOLATILITY: self.playbook_high_volatility,
            Regime.CHOP: self.playbook_chop,
        }.get(regime, "stand_aside")

    def threshold_for(self, regime: Regime) -> float:
        """Confidence threshold in ``regime`` (a regime override or the base threshold)."""
        override = {
            Regime.TREND_UP: self.confidence_threshold_trend_up,
            Regime.TREND_DOWN: self.confidence_threshold_trend_down,
            Regime.RANGE: self.confidence_threshold_range,
            Regime.HIGH_VOLATILITY: self.confidence_threshold_high_volatility,
            Regime.CHOP: self.confidence_threshold_chop,
        }.get(regime)
        return self.confidence_threshold if override is None else override

    @property
    def warmup(self) -> int:
        """Candles of history after which every indicator has a value."""
        return (
            max(
                self.sma_slow,
                self.ema_period,
                self.rsi_period + 1,
                self.atr_period + self.vol_baseline_period,
                self.bb_period,
                2 * self.adx_period,
                self.chop_period + 1,
                self.rv_period + 1,
                self.volume_period,
                self.breakout_period + 1,
            )
            + 1
        )

    @classmethod
    def from_settings(cls, settings: Any) -> SignalParams:
        """Build from a settings object.

        Accepts a nested model (``settings.signal_params`` or ``settings.signals``, either a
        :class:`SignalParams` or a mapping) or flat ``signal_<field>`` attributes; missing fields
        keep their defaults.
        """
        for name in ("signal_params", "signals"):
            nested = getattr(settings, name, None)
            if isinstance(nested, SignalParams):
                return nested
            if isinstance(nested, dict):
                return cls.model_validate(nested)
        values: dict[str, Any] = {}
        for field in cls.model_fields:
            attr = ENV_PREFIX.lower() + field
            if hasattr(settings, attr):
                values[field] = getattr(settings, attr)
        return cls.model_validate(values)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SignalParams:
        """Build from ``SIGNAL_<FIELD>`` environment variables (lists comma-separated)."""
        import os

        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for field, info in cls.model_fields.items():
            raw = env.get(ENV_PREFIX + field.upper())
            if raw is None or raw.strip() == "":
                continue
            if "tuple" in str(info.annotation):
                values[field] = tuple(s.strip().upper() for s in raw.split(",") if s.strip())
            else:
                values[field] = raw.strip()
        return cls.model_validate(values)
