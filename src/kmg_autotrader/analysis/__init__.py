"""Performance analysis: one implementation used by the backtest, the live bot and the dashboard."""

from kmg_autotrader.analysis.performance import (
    PerformanceReport,
    TradeRecord,
    analyze,
    periods_per_year,
)

__all__ = ["PerformanceReport", "TradeRecord", "analyze", "periods_per_year"]
