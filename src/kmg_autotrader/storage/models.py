"""SQLAlchemy 2 models. Tables are named plainly so users can query them with psql or sqlite3.

Conventions: times are UTC epoch milliseconds (``BIGINT``); money is :class:`Money`
(``NUMERIC`` on PostgreSQL); every trading row has a ``mode`` (``paper`` | ``live``) and every
query filters on it, so PAPER and LIVE never mix.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kmg_autotrader.storage.types import Money

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonDict = dict[str, Any]


class Base(DeclarativeBase):
    """Declarative base with a stable constraint naming convention (for Alembic)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _mode() -> Mapped[str]:
    return mapped_column(String(8), nullable=False, index=True)


class SignalRow(Base):
    """A rule signal or candidate on a closed candle, with its filter trace."""

    __tablename__ = "signals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = _mode()
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    timeframe: Mapped[str] = mapped_column(String(8))
    timestamp: Mapped[int] = mapped_column(BigInteger, index=True)
    side: Mapped[str] = mapped_column(String(4))
    rule: Mapped[str] = mapped_column(String(64))
    strategy: Mapped[str] = mapped_column(String(64), default="")
    strength: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    price: Mapped[float] = mapped_column(Float)
    regime: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text)
    passed: Mapped[bool] = mapped_column(Boolean, default=False)
    rejected_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    indicators: Mapped[JsonDict] = mapped_column(JSON, default=dict)
    trace: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[int] = mapped_column(BigInteger)


class AdvisorCallRow(Base):
    """One LLM advisor call: prompt, raw answer, validation and fallback (the audit log)."""

    __tablename__ = "advisor_calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = _mode()
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    timestamp: Mapped[int] = mapped_column(BigInteger, index=True)
    signal_id: Mapped[int | None] = mapped_column(ForeignKey("signals.id"), nullable=True)
    model: Mapped[str] = mapped_column(String(128), default="")
    prompt_version: Mapped[str] = mapped_column(String(32), default="")
    prompt_hash: Mapped[str] = mapped_column(String(64), index=True, default="")
    prompt: Mapped[str] = mapped_column(Text, default="")
    raw_answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    parsed: Mapped[JsonDict | None] = mapped_column(JSON, nullable=True)
    valid: Mapped[bool] = mapped_column(Boolean, default=False)
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    repaired: Mapped[bool] = mapped_column(Boolean, default=False)
    fallback: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str | None] = mapped_column(String(8), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)


class RiskDecisionRow(Base):
    """A risk approval (with its sized intent) or rejection (with its reason code)."""

    __tablename__ = "risk_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = _mode()
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    side: Mapped[str] = mapped_column(String(4))
    timestamp: Mapped[int] = mapped_column(BigInteger, index=True)
    approved: Mapped[bool] = mapped_column(Boolean)
    reason_code: Mapped[str] = mapped_column(String(48), index=True)
    message: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    stop_loss: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    take_profit: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    signal_id: Mapped[int | None] = mapped_column(ForeignKey("signals.id"), nullable=True)
    params_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    adjustments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    checks: Mapped[JsonDict] = mapped_column(JSON, default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger)


class OrderRow(Base):
    """An order we sent (or are about to send). ``client_order_id`` is unique per mode."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("mode", "client_order_id", name="uq_orders_mode_coid"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = _mode()
    client_order_id: Mapped[str] = mapped_column(String(64))
    exchange_order_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    side: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    filled: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    average_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    fee: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    fee_currency: Mapped[str | None] = mapped_column(String(16), nullable=True)
    purpose: Mapped[str] = mapped_column(String(24), default="entry")
    intent_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    position_id: Mapped[int | None] = mapped_column(ForeignKey("positions.id"), nullable=True)
    risk_decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("risk_decisions.id"), nullable=True
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class FillRow(Base):
    """One execution of an order. ``(mode, client_order_id, trade_id)`` is unique: never doubled."""

    __tablename__ = "fills"
    __table_args__ = (
        UniqueConstraint("mode", "client_order_id", "trade_id", name="uq_fills_mode_coid_trade"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = _mode()
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    client_order_id: Mapped[str] = mapped_column(String(64), index=True)
    trade_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    side: Mapped[str] = mapped_column(String(4))
    amount: Mapped[Decimal] = mapped_column(Money)
    price: Mapped[Decimal] = mapped_column(Money)
    fee: Mapped[Decimal] = mapped_column(Money)
    fee_currency: Mapped[str] = mapped_column(String(16))
    is_maker: Mapped[bool] = mapped_column(Boolean, default=False)
    intended_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    slippage_bps: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    timestamp: Mapped[int] = mapped_column(BigInteger, index=True)
    # a fee in a third currency (BNB) valued in the quote currency at the fill's time, and the
    # rate used; NULL for a fee in the base or quote currency, or when no price was known
    fee_quote: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    fee_rate: Mapped[Decimal | None] = mapped_column(Money, nullable=True)


class PositionRow(Base):
    """A long position; open while ``closed_at`` is NULL."""

    __tablename__ = "positions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = _mode()
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    entry_price: Mapped[Decimal] = mapped_column(Money)
    opened_at: Mapped[int] = mapped_column(BigInteger)
    stop_loss: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    take_profit: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    trailing_stop_pct: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    highest_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    fees_paid: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    realized_pnl: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    closed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    exit_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    exit_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    exiting: Mapped[bool] = mapped_column(Boolean, default=False)  # claimed by an exit in flight
    extra: Mapped[JsonDict] = mapped_column(JSON, default=dict)


class BalanceRow(Base):
    """Holdings of one currency for one mode (the paper ledger, or the last synced live view)."""

    __tablename__ = "balances"
    __table_args__ = (UniqueConstraint("mode", "currency", name="uq_balances_mode_currency"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = _mode()
    currency: Mapped[str] = mapped_column(String(16))
    free: Mapped[Decimal] = mapped_column(Money)
    used: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    updated_at: Mapped[int] = mapped_column(BigInteger)


class EquitySnapshotRow(Base):
    """Equity marked to market at a point in time."""

    __tablename__ = "equity_snapshots"
    __table_args__ = (Index("ix_equity_snapshots_mode_ts", "mode", "timestamp"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = _mode()
    timestamp: Mapped[int] = mapped_column(BigInteger)
    equity: Mapped[Decimal] = mapped_column(Money)
    cash: Mapped[Decimal] = mapped_column(Money)
    positions_value: Mapped[Decimal] = mapped_column(Money)
    details: Mapped[JsonDict] = mapped_column(JSON, default=dict)


class RiskParameterVersionRow(Base):
    """One version of the runtime-editable risk parameters of one mode, with when and who.

    Versions count per mode (PAPER v3 and LIVE v3 are different rows): an edit made in one
    mode never changes the other's limits.
    """

    __tablename__ = "risk_parameter_versions"
    __table_args__ = (
        UniqueConstraint("mode", "version", name="uq_risk_parameter_versions_mode_version"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = _mode()
    version: Mapped[int] = mapped_column(Integer)
    params: Mapped[JsonDict] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)


class RiskStateRow(Base):
    """Persistent risk state (breaker, kill-switch, daily counters) so it survives a restart."""

    __tablename__ = "risk_state"
    __table_args__ = (UniqueConstraint("mode", "key", name="uq_risk_state_mode_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = _mode()
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[JsonDict] = mapped_column(JSON)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class MlModelRow(Base):
    """A trained model in the registry."""

    __tablename__ = "ml_models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    trained_at: Mapped[int] = mapped_column(BigInteger, index=True)
    metrics: Mapped[JsonDict] = mapped_column(JSON, default=dict)
    params: Mapped[JsonDict] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class ChatMessageRow(Base):
    """One message of the dashboard chat (user or assistant)."""

    __tablename__ = "chat_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation: Mapped[str] = mapped_column(String(64), index=True, default="default")
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    meta: Mapped[JsonDict] = mapped_column(JSON, default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AlertRow(Base):
    """An alert sent (or that failed to send) to Telegram, Discord or another Apprise target."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = _mode()
    event: Mapped[str] = mapped_column(String(48), index=True)
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16))  # queued | sent | failed | suppressed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)
    sent_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class EventRow(Base):
    """A system or error event: feed switches, exchange errors, breaker trips, anomalies."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = _mode()
    kind: Mapped[str] = mapped_column(String(48), index=True)
    level: Mapped[str] = mapped_column(String(12), default="info")
    source: Mapped[str] = mapped_column(String(48), default="")
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[JsonDict] = mapped_column(JSON, default=dict)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)


class SchedulerJobRow(Base):
    """A scheduled job in APScheduler's ``SQLAlchemyJobStore`` layout: the daily and weekly
    summaries per mode, with their next run time (UTC epoch seconds) and pickled state."""

    __tablename__ = "apscheduler_jobs"
    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), nullable=True, index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
