"""Portfolio: positions derived from fills, equity marking, the exchange's balances (LIVE)."""

from kmg_autotrader.portfolio.balances import ExchangeBalances
from kmg_autotrader.portfolio.equity import mark_equity
from kmg_autotrader.portfolio.positions import PositionFigures, atr_levels, figures_from_fills

__all__ = ["ExchangeBalances", "PositionFigures", "atr_levels", "figures_from_fills", "mark_equity"]
