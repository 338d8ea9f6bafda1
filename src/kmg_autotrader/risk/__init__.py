"""Risk manager: the gate every order passes — limits, sizing, cooldowns, breakers.

Wiring (autopilot / backtest)::

    store = RiskParamsStore.from_settings(repos.risk_params, settings, settings.trading_mode)
    manager = RiskManager(
        mode=settings.trading_mode,
        params=store,
        state=DbRiskStateStore(repos.risk_state, settings.trading_mode),  # InMemory… in backtests
        decisions=repos.risk_decisions,  # None in backtests
        clock=clock,
        execution_mode=settings.execution_mode,
        on_event=handler,  # breaker / kill-switch → alerts (and flatten when asked)
    )
    decision = manager.evaluate(candidate, PortfolioState.from_account(...), market)
"""

from kmg_autotrader.risk.events import RiskEvent, RiskEventHandler, RiskEventKind
from kmg_autotrader.risk.manager import RiskManager
from kmg_autotrader.risk.params import (
    EffectiveParams,
    EffectiveValue,
    RiskParams,
    RiskParamsError,
    RiskParamsStore,
    env_sources,
    validate_params,
)
from kmg_autotrader.risk.portfolio_state import OpenPosition, PortfolioState
from kmg_autotrader.risk.reasons import ReasonCode
from kmg_autotrader.risk.state import (
    DbRiskStateStore,
    InMemoryRiskStateStore,
    RiskState,
    RiskStateStore,
)

__all__ = [
    "DbRiskStateStore",
    "EffectiveParams",
    "EffectiveValue",
    "InMemoryRiskStateStore",
    "OpenPosition",
    "PortfolioState",
    "ReasonCode",
    "RiskEvent",
    "RiskEventHandler",
    "RiskEventKind",
    "RiskManager",
    "RiskParams",
    "RiskParamsError",
    "RiskParamsStore",
    "RiskState",
    "RiskStateStore",
    "env_sources",
    "validate_params",
]
