"""Machine-readable reason codes of risk decisions (stored in ``risk_decisions.reason_code``)."""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Why a candidate was approved or rejected."""

    APPROVED = "APPROVED"
    INVALID_CANDIDATE = "INVALID_CANDIDATE"
    DRAWDOWN_BREAKER = "DRAWDOWN_BREAKER"
    DAILY_LOSS_KILL_SWITCH = "DAILY_LOSS_KILL_SWITCH"
    DAILY_TRADE_LIMIT = "DAILY_TRADE_LIMIT"
    ALREADY_IN_POSITION = "ALREADY_IN_POSITION"
    MAX_POSITIONS = "MAX_POSITIONS"
    LOSS_COOLDOWN = "LOSS_COOLDOWN"
    SYMBOL_COOLDOWN = "SYMBOL_COOLDOWN"
    FEE_EDGE = "FEE_EDGE"
    MAX_EXPOSURE = "MAX_EXPOSURE"
    POSITION_CAP = "POSITION_CAP"
    INSUFFICIENT_CASH = "INSUFFICIENT_CASH"
    BELOW_MIN_AMOUNT = "BELOW_MIN_AMOUNT"
    BELOW_MIN_COST = "BELOW_MIN_COST"
    NO_HOLDINGS = "NO_HOLDINGS"
    INTERNAL_ERROR = "INTERNAL_ERROR"  # a bug or bad data: fail closed, never approve
