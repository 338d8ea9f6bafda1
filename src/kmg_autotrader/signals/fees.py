"""Round-trip trading cost for the fee gate, per exchange and execution mode.

The exchange adapter knows the real per-market fees (``MarketInfo.maker_fee``/``taker_fee``);
pass them in with :meth:`FeeSchedule.from_market`. Without them we use each venue's published
base-tier spot fees, and a conservative default for venues we do not list.
"""

from __future__ import annotations

from dataclasses import dataclass

from kmg_autotrader.domain import ExecutionMode, MarketInfo

# base-tier spot fees (maker, taker) as fractions
_DEFAULT_FEES: dict[str, tuple[float, float]] = {
    "binance": (0.001, 0.001),
    "kraken": (0.0025, 0.004),
    "coinbase": (0.004, 0.006),
    "bybit": (0.001, 0.001),
    "okx": (0.0008, 0.001),
    "kucoin": (0.001, 0.001),
}
_UNKNOWN_VENUE = (0.002, 0.003)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker and taker fee fractions (0.001 = 0.1 %) of one market."""

    maker: float
    taker: float

    @classmethod
    def for_exchange(cls, exchange: str) -> FeeSchedule:
        """Base-tier fees of a ccxt exchange id (conservative default when unknown)."""
        maker, taker = _DEFAULT_FEES.get(exchange.lower(), _UNKNOWN_VENUE)
        return cls(maker, taker)

    @classmethod
    def from_market(cls, market: MarketInfo) -> FeeSchedule:
        """Fees the exchange adapter reported for a market."""
        return cls(float(market.maker_fee), float(market.taker_fee))

    def round_trip(self, mode: ExecutionMode) -> float:
        """Fees of entering and leaving once, as a fraction of the notional.

        MARKET_ONLY pays taker twice. LIMIT_BRACKET enters as maker, but the exit may be a
        triggered stop (a taker order), so we count taker for the exit to stay on the safe side.
        """
        if mode is ExecutionMode.LIMIT_BRACKET:
            return self.maker + self.taker
        return 2 * self.taker
