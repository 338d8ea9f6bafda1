"""The pre-trade filter pipeline: symbol → regime → fee gate → confidence gate.

Each filter is computed as arrays over candidate rows (a backtest's entry rows, or the single
live row), so both paths share the code and produce the same verdicts; :meth:`FilterReport.trace`
turns one row's verdicts into the tuple of :class:`~kmg_autotrader.domain.FilterStep` stored
with the signal. Every filter is recorded, passed or not, so the dashboard can show them all;
the first failure is the rejection reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from kmg_autotrader.domain import ExecutionMode, FilterStep, Regime
from kmg_autotrader.domain.fee_edge import EdgeCosts, FeeEdge
from kmg_autotrader.signals.bars import Bars, BoolArray
from kmg_autotrader.signals.fees import FeeSchedule
from kmg_autotrader.signals.indicators.nodes import FloatArray
from kmg_autotrader.signals.params import SignalParams
from kmg_autotrader.signals.regimes import CODE, REGIMES, IntArray
from kmg_autotrader.signals.strategies.base import STYLE_MEAN_REVERSION, STYLE_TREND, STYLES

FILTER_NAMES = ("symbol", "regime", "fee_gate", "confidence_gate")
_GATE_NAMES = FILTER_NAMES[1:]
_STYLE_CODE = {"trend_following": STYLE_TREND, "mean_reversion": STYLE_MEAN_REVERSION}


@dataclass(slots=True)
class FilterReport:
    """Verdicts of every filter for a set of candidate rows (arrays aligned with the rows)."""

    symbol: str
    gated: bool
    regime: IntArray
    style: np.ndarray[Any, np.dtype[np.int8]]
    symbol_ok: bool
    symbol_reason: str
    regime_ok: BoolArray
    allowed_style: np.ndarray[Any, np.dtype[np.int8]]
    expected_move: FloatArray
    edge: FeeEdge
    fee_ok: BoolArray
    base_confidence: FloatArray
    boosts: dict[str, FloatArray]
    penalties: dict[str, FloatArray]
    confidence: FloatArray
    threshold: FloatArray
    confidence_ok: BoolArray
    passed: BoolArray

    def trace(self, j: int) -> tuple[FilterStep, ...]:
        """The filter steps of row ``j`` of this report."""
        symbol_step = FilterStep(
            "symbol", self.symbol_ok, self.symbol_reason, {"symbol": self.symbol}
        )
        if not self.gated:
            skipped = "not applied: this strategy runs its rules exactly"
            return (
                symbol_step,
                FilterStep(_GATE_NAMES[0], True, skipped, {}),
                FilterStep(_GATE_NAMES[1], True, skipped, {}),
                FilterStep(_GATE_NAMES[2], True, skipped, {}),
            )
        regime = REGIMES[int(self.regime[j])]
        style = STYLES[int(self.style[j])]
        allowed = STYLES[int(self.allowed_style[j])]
        regime_ok = bool(self.regime_ok[j])
        if regime_ok:
            why = f"regime {regime} plays {allowed}; {style} entry allowed"
        elif regime is Regime.UNKNOWN:
            why = "regime unknown (warm-up): stand aside"
        elif allowed == "none":
            why = f"regime {regime}: stand aside"
        else:
            why = f"regime {regime} plays {allowed}, not {style}"
        regime_step = FilterStep("regime", regime_ok, why, {"regime": str(regime), "style": style})
        move = float(self.expected_move[j])
        edge = self.edge
        fee_step = FilterStep(
            "fee_gate",
            bool(self.fee_ok[j]),
            edge.message(Decimal(str(move))),
            {
                "expected_move": move,
                "round_trip_fees": float(edge.fees),
                "slippage_round_trip": float(edge.slippage),
                "fee_safety_margin": float(edge.margin),
                "required": float(edge.required),
            },
        )
        details: dict[str, Any] = {"base": float(self.base_confidence[j])}
        parts = [f"base {details['base']:.2f}"]
        for name, values in self.boosts.items():
            value = values[j]  # read once (the numpy scalar prints like the float)
            if value:
                details[name] = float(value)
                parts.append(f"+{value:.2f} {name}")
        for name, values in self.penalties.items():
            value = values[j]
            if value:
                details[name] = -float(value)
                parts.append(f"-{value:.2f} {name}")
        conf = float(self.confidence[j])
        threshold = float(self.threshold[j])
        details.update(confidence=conf, threshold=threshold)
        ok = bool(self.confidence_ok[j])
        confidence_step = FilterStep(
            "confidence_gate",
            ok,
            f"confidence {conf:.2f} {'≥' if ok else '<'} threshold {threshold:.2f} "
            f"({regime}): " + ", ".join(parts),
            details,
        )
        return (symbol_step, regime_step, fee_step, confidence_step)

    def rejected_by(self, j: int) -> str | None:
        """Name of the first failed filter of row ``j`` (None when it passed)."""
        for step in self.trace(j):
            if not step.passed:
                return step.name
        return None


class PreTradeFilters:
    """Symbol filter, regime filter, fee gate and confidence gate for one venue and mode."""

    def __init__(
        self,
        params: SignalParams,
        *,
        fees: FeeSchedule | None = None,
        exchange: str = "binance",
        execution_mode: ExecutionMode = ExecutionMode.MARKET_ONLY,
        costs: EdgeCosts | Callable[[], EdgeCosts] | None = None,
    ) -> None:
        self.params = params
        self.fees = fees or FeeSchedule.for_exchange(exchange)
        self.execution_mode = execution_mode
        # the risk manager's slippage and margin, so the gate and the risk check agree: fixed,
        # or read when a candidate is filtered (the live bot: the mode's risk limits in effect,
        # a dashboard edit included)
        self._costs_source = costs if callable(costs) else None
        self._costs = EdgeCosts() if costs is None or callable(costs) else costs
        self._edge = FeeEdge.of(self.fees.maker, self.fees.taker, execution_mode, self._costs)
        p = params
        self._threshold = np.array([p.threshold_for(r) for r in REGIMES])
        self._playbook = np.array(
            [_STYLE_CODE.get(p.playbook_for(r), 0) for r in REGIMES], dtype=np.int8
        )

    @property
    def edge(self) -> FeeEdge:
        """The fee edge in effect now (the one computation the risk manager makes too)."""
        if self._costs_source is not None:
            costs = self._costs_source()
            if costs != self._costs:
                self._costs = costs
                self._edge = FeeEdge.of(
                    self.fees.maker, self.fees.taker, self.execution_mode, costs
                )
        return self._edge

    def symbol_verdict(self, symbol: str) -> tuple[bool, str]:
        """Whether ``symbol`` may be traded, and why."""
        p = self.params
        if symbol in p.symbol_blocklist:
            return False, f"{symbol} is blocked"
        if p.symbol_allowlist and symbol not in p.symbol_allowlist:
            return False, f"{symbol} is not in the allow list"
        return True, f"{symbol} allowed"

    def evaluate(
        self,
        symbol: str,
        bars: Bars,
        regime: IntArray,
        style: np.ndarray[Any, np.dtype[np.int8]],
        base_confidence: FloatArray,
        expected_move: FloatArray,
        *,
        gated: bool = True,
    ) -> FilterReport:
        """Verdicts for the rows of ``bars`` (all other arguments are aligned with them)."""
        p = self.params
        symbol_ok, symbol_reason = self.symbol_verdict(symbol)
        allowed = self._playbook[regime]
        regime_ok = (allowed == style) & (style != 0)
        move = np.nan_to_num(expected_move, nan=0.0)
        edge = self.edge
        fee_ok = move > float(edge.required)
        boosts = {
            "volume_spike": np.where(
                bars["volume_z"] >= p.volume_spike_z, p.boost_volume_spike, 0.0
            ),
            "strong_trend": np.where(
                (bars["adx"] >= p.adx_strong) & (style == STYLE_TREND), p.boost_strong_trend, 0.0
            ),
        }
        penalties = {
            "high_volatility": np.where(
                regime == CODE[Regime.HIGH_VOLATILITY], p.penalty_high_volatility, 0.0
            ),
            "chop": np.where(regime == CODE[Regime.CHOP], p.penalty_chop, 0.0),
            "rsi_stretched": np.where(
                bars["rsi"] >= p.rsi_entry_max - 5.0, p.penalty_rsi_stretched, 0.0
            ),
        }
        total = base_confidence + sum(boosts.values()) - sum(penalties.values())
        confidence = np.clip(np.nan_to_num(total, nan=0.0), 0.0, 1.0)
        threshold = self._threshold[regime]
        confidence_ok = confidence >= threshold
        if gated:
            passed = symbol_ok & regime_ok & fee_ok & confidence_ok
        else:
            confidence = np.clip(np.nan_to_num(base_confidence, nan=0.0), 0.0, 1.0)
            passed = np.full(len(regime), symbol_ok)
        return FilterReport(
            symbol=symbol,
            gated=gated,
            regime=regime,
            style=style,
            symbol_ok=symbol_ok,
            symbol_reason=symbol_reason,
            regime_ok=regime_ok,
            allowed_style=allowed,
            expected_move=move,
            edge=edge,
            fee_ok=fee_ok,
            base_confidence=base_confidence,
            boosts=boosts,
            penalties=penalties,
            confidence=confidence,
            threshold=threshold,
            confidence_ok=confidence_ok,
            passed=np.asarray(passed, dtype=bool),
        )
