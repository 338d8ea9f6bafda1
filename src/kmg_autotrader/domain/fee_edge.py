"""The fee-edge rule: an entry must expect a move above what a round trip costs.

One computation and one message, used by the signal filter's fee gate and by the risk manager,
so a signal never passes one at 0.350 % and fails the other at 0.400 %. The costs are the risk
parameters' (``slippage_bps`` per fill, ``fee_safety_margin``); the fees are the market's, or
each venue's published base tier when no market is at hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kmg_autotrader.domain.enums import ExecutionMode

_BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class EdgeCosts:
    """What a round trip costs besides the fees: slippage of each fill and a safety margin.

    The defaults are :class:`~kmg_autotrader.risk.params.RiskParams`' defaults
    (``slippage_bps`` 5, ``fee_safety_margin`` 0.001).
    """

    slippage_bps: Decimal = Decimal("5.0")
    margin: Decimal = Decimal("0.001")

    @classmethod
    def of(cls, slippage_bps: float | Decimal, margin: float | Decimal) -> EdgeCosts:
        """From the risk parameters' ``slippage_bps`` and ``fee_safety_margin``."""
        return cls(Decimal(str(slippage_bps)), Decimal(str(margin)))

    @classmethod
    def of_params(cls, params: Any) -> EdgeCosts:
        """From a :class:`~kmg_autotrader.risk.params.RiskParams` (or anything with its two
        cost fields)."""
        return cls.of(params.slippage_bps, params.fee_safety_margin)


@dataclass(frozen=True, slots=True)
class FeeEdge:
    """Round-trip fees, round-trip slippage and the margin (fractions of notional)."""

    fees: Decimal
    slippage: Decimal
    margin: Decimal

    @classmethod
    def of(
        cls,
        maker: Decimal | float,
        taker: Decimal | float,
        mode: ExecutionMode,
        costs: EdgeCosts,
    ) -> FeeEdge:
        """The edge of one market: a limit entry pays maker, a market entry taker; the exit may
        be a triggered stop (a taker order) in every mode, so it is counted as taker."""
        maker_d, taker_d = Decimal(str(maker)), Decimal(str(taker))
        entry = maker_d if mode is ExecutionMode.LIMIT_BRACKET else taker_d
        return cls(entry + taker_d, 2 * (costs.slippage_bps / _BPS), costs.margin)

    @property
    def required(self) -> Decimal:
        """The move a trade must expect to be worth it: fees + slippage + margin."""
        return self.fees + self.slippage + self.margin

    def passes(self, expected_move: Decimal) -> bool:
        """True when ``expected_move`` exceeds the required edge."""
        return expected_move > self.required

    def message(self, expected_move: Decimal) -> str:
        """The verdict in words, with every figure (the same text from filter and risk)."""
        ok = self.passes(expected_move)
        return (
            f"expected move {expected_move:.3%} {'>' if ok else '≤'} required edge "
            f"{self.required:.3%} (round-trip fees {self.fees:.3%} + slippage "
            f"{self.slippage:.3%} + margin {self.margin:.3%})"
        )
