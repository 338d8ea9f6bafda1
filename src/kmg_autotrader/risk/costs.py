"""Trading costs: round-trip fees by execution mode, slippage, and the fee-adjusted edge rule."""

from __future__ import annotations

from decimal import Decimal

from kmg_autotrader.domain import ExecutionMode, MarketInfo
from kmg_autotrader.domain.fee_edge import EdgeCosts, FeeEdge
from kmg_autotrader.risk.params import RiskParams, param_decimals

# an enum member read through its class costs a __getattr__ hook each time
_LIMIT_BRACKET = ExecutionMode.LIMIT_BRACKET


def entry_fee_rate(market: MarketInfo, mode: ExecutionMode) -> Decimal:
    """Fee of the entry fill: maker for a limit entry, taker for a market order."""
    return market.maker_fee if mode is _LIMIT_BRACKET else market.taker_fee


def round_trip_fees(market: MarketInfo, mode: ExecutionMode) -> Decimal:
    """Fees of entering and leaving once, as a fraction of notional.

    The exit may be a triggered stop (a taker order) in every mode, so it is counted as taker.
    """
    return entry_fee_rate(market, mode) + market.taker_fee


def slippage_rate(params: RiskParams) -> Decimal:
    """Expected slippage of one fill, as a fraction."""
    return param_decimals(params).slippage_rate


def fee_edge(market: MarketInfo, mode: ExecutionMode, params: RiskParams) -> FeeEdge:
    """Round-trip fees, round-trip slippage and the safety margin of ``market``: the one
    fee-edge computation, shared with the signal filter's fee gate."""
    decimals = param_decimals(params)
    costs = EdgeCosts(decimals.slippage_bps, decimals.fee_safety_margin)
    return FeeEdge.of(market.maker_fee, market.taker_fee, mode, costs)


def required_edge(market: MarketInfo, mode: ExecutionMode, params: RiskParams) -> Decimal:
    """The move a trade must expect to be worth it: fees + slippage both ways + a margin."""
    return fee_edge(market, mode, params).required
