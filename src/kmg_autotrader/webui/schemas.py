"""Response and request models of the web API (they are the OpenAPI document).

Times are UTC epoch milliseconds; money is a float in the quote currency (the records keep
``Decimal``; JSON readers get numbers). Every list endpoint pages with ``limit``/``offset`` and
says ``has_more``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    field_validator,
)

from kmg_autotrader.risk import units
from kmg_autotrader.risk.params import RiskParams


class ApiModel(BaseModel):
    """Base of every response model."""

    model_config = ConfigDict(extra="forbid")


class ErrorItem(ApiModel):
    """One invalid field and why."""

    field: str = Field(description="Field name (dotted for nested values).")
    message: str


class ErrorResponse(ApiModel):
    """Any 4xx answer."""

    detail: str
    errors: list[ErrorItem] = Field(default_factory=list)


class Page(ApiModel):
    """Paging information shared by list responses."""

    limit: int
    offset: int
    has_more: bool


# ---- health ------------------------------------------------------------------------------------


class HealthResponse(ApiModel):
    """Liveness and a summary of the bot. Details only for an authenticated caller."""

    status: Literal["ok", "degraded", "unknown"]
    mode: Literal["paper", "live"]
    time: int
    version: str
    paused: bool | None = None
    feed_status: str | None = None
    last_candle_at: int | None = None
    last_candle_age_s: float | None = None
    advisor_status: str | None = None
    breaker_state: str | None = None
    last_error: str | None = None
    last_error_at: int | None = None
    last_equity_at: int | None = None
    uptime_s: float | None = None


# ---- metrics / equity / positions / trades -----------------------------------------------------


class MetricsResponse(ApiModel):
    """Live performance figures from the recorded equity curve and closed trades."""

    mode: Literal["paper", "live"]
    as_of: int | None = Field(description="Time of the newest equity point (None: no data).")
    equity: float | None
    initial_equity: float | None
    total_return: float = Field(description="Fraction: 0.05 = +5 %.")
    max_drawdown: float = Field(description="Fraction below the peak: 0.1 = 10 %.")
    sharpe: float
    trades: int
    wins: int
    losses: int
    win_rate: float
    profit_factor: float | None = Field(description="None when there is no losing trade.")
    realized_pnl: float
    fees_paid: float
    open_positions: int
    equity_points: int


class EquityPointOut(ApiModel):
    """One equity point."""

    t: int
    equity: float
    cash: float
    positions_value: float


class EquityResponse(ApiModel):
    """The equity curve (downsampled to at most ``max_points``: the last point of each bucket)."""

    mode: Literal["paper", "live"]
    points: list[EquityPointOut]
    total_points: int
    downsampled: bool


class PositionOut(ApiModel):
    """An open position."""

    id: int
    symbol: str
    amount: float
    entry_price: float
    cost: float
    opened_at: int
    stop_loss: float | None
    take_profit: float | None
    trailing_stop_pct: float | None
    highest_price: float | None
    fees_paid: float


class BalanceOut(ApiModel):
    """Holdings of one currency."""

    currency: str
    free: float
    used: float
    total: float


class PositionsResponse(ApiModel):
    """Open positions and balances of the current mode."""

    mode: Literal["paper", "live"]
    positions: list[PositionOut]
    balances: list[BalanceOut]


class TradeOut(ApiModel):
    """A closed position (one round trip)."""

    id: int
    symbol: str
    amount: float
    entry_price: float
    exit_price: float | None
    opened_at: int
    closed_at: int
    realized_pnl: float
    return_pct: float | None = Field(description="PnL over the entry cost, in percent.")
    fees_paid: float
    exit_reason: str | None


class TradesResponse(Page):
    """Closed trades, newest first."""

    mode: Literal["paper", "live"]
    items: list[TradeOut]


# ---- signals -----------------------------------------------------------------------------------


class FilterStepOut(ApiModel):
    """One step of the filter trace."""

    name: str
    passed: bool
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)


class AdvisorOut(ApiModel):
    """The advisor's answer for a signal."""

    id: int
    action: str | None
    confidence: float | None
    valid: bool
    fallback: str | None
    model: str
    latency_ms: int | None
    reasoning: str | None


class RiskOut(ApiModel):
    """The risk manager's verdict for a signal."""

    id: int
    approved: bool
    reason_code: str
    message: str
    amount: float | None
    adjustments: list[str]


class OrderOut(ApiModel):
    """An order (summary)."""

    client_order_id: str
    symbol: str
    side: str
    type: str
    status: str
    amount: float
    filled: float
    price: float | None
    average_price: float | None
    fee: float
    purpose: str
    created_at: int
    error: str | None


Stage = Literal["filtered", "advisor_vetoed", "risk_rejected", "approved", "ordered", "passed"]


class SignalFlowItem(ApiModel):
    """A signal and what every later stage decided about it."""

    id: int
    timestamp: int
    symbol: str
    timeframe: str
    side: str
    rule: str
    strategy: str
    strength: float
    confidence: float | None
    price: float
    regime: str
    reason: str
    passed: bool
    rejected_by: str | None
    trace: list[FilterStepOut]
    indicators: dict[str, float | None]
    advisor: AdvisorOut | None
    risk: RiskOut | None
    orders: list[OrderOut]
    stage: Stage = Field(description="How far the signal went down the pipeline.")


class SignalsResponse(Page):
    """Signals with their filter trace and downstream decisions, newest first."""

    mode: Literal["paper", "live"]
    items: list[SignalFlowItem]


class RejectionOut(ApiModel):
    """A recent rejection at any stage."""

    stage: Literal["filter", "advisor", "risk"]
    timestamp: int
    symbol: str
    reason: str
    message: str


class RejectionsResponse(ApiModel):
    """Rejection counts per stage and reason since ``since``, and the latest rejections."""

    mode: Literal["paper", "live"]
    since: int
    filter_counts: dict[str, int]
    advisor_counts: dict[str, int]
    risk_counts: dict[str, int]
    latest: list[RejectionOut]


class ConfidencePoint(ApiModel):
    """One advisor answer's confidence."""

    t: int
    symbol: str
    action: str | None
    confidence: float | None
    valid: bool
    fallback: str | None


class ConfidenceResponse(ApiModel):
    """LLM confidence history, oldest first."""

    mode: Literal["paper", "live"]
    points: list[ConfidencePoint]


# ---- risk --------------------------------------------------------------------------------------


class RiskFieldInfo(ApiModel):
    """How the editor should show one risk parameter."""

    name: str
    title: str
    description: str
    type: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    default: Any = None
    unit: str | None = Field(None, description="'%' (percent), 'bps', 'min' or 'quote'.")


class RiskValueSource(ApiModel):
    """Where one parameter's value in effect comes from."""

    name: str
    source: str = Field(
        description="'default', '.env (SETTING)' or 'dashboard edit vN at <UTC time>'."
    )
    setting: str | None = Field(None, description="The .env setting behind it, if any.")
    overrides: Any = Field(None, description="The .env value a stored edit overrides.")


class RiskResponse(ApiModel):
    """The risk parameters in effect for the dashboard's mode (the newest stored version of the
    mode wins over .env, which wins over the defaults)."""

    mode: Literal["paper", "live"]
    version: int
    params: dict[str, Any] = Field(
        description="Values in the unit of each field: every percentage in percent (20 = 20 %)."
    )
    fields: list[RiskFieldInfo]
    sources: list[RiskValueSource] = Field(default_factory=list)
    source: str | None = None
    comment: str | None = None
    updated_at: int | None = None


class ApiInput(BaseModel):
    """Base of every request body: unknown fields and wrong JSON types are refused.

    Strict: ``true`` is not 1, ``"50.0"`` is not 50, ``"yes"`` is not ``true``; as in JSON
    Schema, an integer is a number (5 where 5.0 is expected) and 5.0 is an integer
    (integer parameters). NaN and infinity are refused.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _integral(value: Any) -> Any:
    # JSON Schema's "integer" is any number without a fraction: 2.0 is one, "2" and true are not
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # absent means "unchanged", not null


class _ChangesBase(ApiInput):
    """Base of the risk changes model: at least one parameter."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})


def _risk_changes_model() -> type[ApiInput]:
    """Every risk parameter as an optional, non-defaulted field with its type and range.

    Every percentage is typed in percent (``max_position_percent`` 20 = 20 %); the route
    converts to the stored fractions (:mod:`kmg_autotrader.risk.units`).

    Built from :class:`~kmg_autotrader.risk.params.RiskParams`, so the document and the strict
    check follow the model the risk manager reads. A field may be null only where the parameter
    may be (``stake_amount``).
    """
    fields: dict[str, Any] = {}
    for name, info in RiskParams.model_fields.items():
        annotation: Any = info.annotation
        # the ranges (gt/le/…) first, the validator last: so the schema keeps "minimum" & co.
        extra: list[Any] = [BeforeValidator(_integral)] if annotation is int else []
        metadata = units.shown_metadata(name, info.metadata)  # percent where stored as fraction
        if metadata or extra:
            annotation = Annotated[(annotation, *metadata, *extra)]
        fields[name] = (
            annotation,
            Field(
                None,
                title=info.title,
                description=units.DESCRIPTIONS.get(name, info.description),
                json_schema_extra=_drop_default,
            ),
        )
    model: type[ApiInput] = create_model(
        "RiskChanges",
        __base__=_ChangesBase,
        __doc__="Risk parameter name → new value; at least one.",
        **fields,
    )
    return model


if TYPE_CHECKING:  # a class built at run time: type checkers see its base
    RiskChanges = ApiInput
else:
    RiskChanges = _risk_changes_model()


class RiskUpdate(ApiInput):
    """A change to some risk parameters (the others keep their value)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"changes": {"max_open_positions": 2}, "comment": "fewer at once"}]
        }
    )

    changes: RiskChanges = Field(
        description="Parameter name → new value (at least one). Others keep their value."
    )
    comment: str = Field("", max_length=500, description="Why (kept with the new version).")

    @field_validator("changes")
    @classmethod
    def _at_least_one(cls, changes: ApiInput) -> ApiInput:
        if not changes.model_fields_set:
            raise ValueError("give at least one parameter")
        return changes

    def changed(self) -> dict[str, Any]:
        """The parameters the caller sent, with their (validated) values."""
        return dict(self.changes.model_dump(exclude_unset=True))


# ---- logs / ml / control -----------------------------------------------------------------------


LogKind = Literal["advisor", "order", "event", "alert"]


class LogEntry(ApiModel):
    """One line of the unified log."""

    id: str = Field(description="'<kind>:<row id>'.")
    kind: LogKind
    time: int
    level: str
    symbol: str | None
    title: str
    message: str
    details: dict[str, Any]


class LogsResponse(Page):
    """Advisor calls, orders, events and alerts, newest first."""

    mode: Literal["paper", "live"]
    items: list[LogEntry]


class MlStatusResponse(ApiModel):
    """The newest model in the registry, or why there is none."""

    status: Literal["no_model", "ready"]
    message: str
    name: str | None = None
    version: str | None = None
    trained_at: int | None = None
    accuracy: float | None = None
    active: bool | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)


class TripState(ApiModel):
    """The drawdown breaker or the daily kill-switch: tripped or not, and the last manual clear."""

    tripped: bool
    tripped_at: int | None = None
    reason: str | None = None
    cleared_at: int | None = None
    cleared_by: str | None = None


class ControlState(ApiModel):
    """Whether new trades are paused, by whom and when; and the risk manager's two switches."""

    paused: bool
    by: str | None = None
    at: int | None = None
    reason: str | None = None
    breaker: TripState | None = None
    kill_switch: TripState | None = None


class ControlResult(ApiModel):
    """What a control action did."""

    action: Literal["pause", "resume", "flatten", "clear_breaker"]
    ok: bool
    paused: bool
    message: str
    summary: dict[str, Any] = Field(default_factory=dict)
