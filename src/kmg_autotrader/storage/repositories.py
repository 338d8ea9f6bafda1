"""Repositories: the only code that writes rows.

Every trading query takes a ``mode`` and filters on it, so PAPER and LIVE never mix. Methods
open their own short transaction; values go in and come out as domain types or plain dicts.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from loguru import logger
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from kmg_autotrader.domain import (
    Balance,
    Candidate,
    EquityPoint,
    Fill,
    Mode,
    Order,
    OrderStatus,
    OrderType,
    Position,
    RiskDecision,
    Side,
    Signal,
)
from kmg_autotrader.domain.clock import now_ms
from kmg_autotrader.storage.database import Database
from kmg_autotrader.storage.models import (
    AdvisorCallRow,
    AlertRow,
    BalanceRow,
    ChatMessageRow,
    EquitySnapshotRow,
    EventRow,
    FillRow,
    MlModelRow,
    OrderRow,
    PositionRow,
    RiskDecisionRow,
    RiskParameterVersionRow,
    RiskStateRow,
    SignalRow,
)

MAX_PAGE = 1000
_OPEN_STATUSES = (
    OrderStatus.PENDING.value,
    OrderStatus.OPEN.value,
    OrderStatus.PARTIALLY_FILLED.value,
    OrderStatus.UNRESOLVED.value,
)


def _page(limit: int, offset: int) -> tuple[int, int]:
    if limit < 1 or offset < 0:
        raise ValueError("limit must be >= 1 and offset >= 0")
    return min(limit, MAX_PAGE), offset


def _mode(mode: Mode | str) -> str:
    return Mode(mode).value


def _jsonable(value: Any) -> Any:
    """Make dataclasses, Decimals and enums JSON-safe for JSON columns."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float) and value != value:  # NaN is not valid JSON
        return None
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value
    return value


def row_to_dict(row: Any) -> dict[str, Any]:
    """A model row as a plain dict (column name → value)."""
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


class _Repository:
    def __init__(self, database: Database) -> None:
        self.db = database


class SignalRepository(_Repository):
    """Signals and candidates with their filter traces."""

    def add(
        self,
        mode: Mode | str,
        signal: Signal,
        *,
        strategy: str = "",
        passed: bool = False,
        rejected_by: str | None = None,
        confidence: float | None = None,
        trace: Sequence[Any] = (),
        created_at: int | None = None,
    ) -> int:
        """Store a signal (and the trace of the filters it went through); return its id."""
        row = SignalRow(
            mode=_mode(mode),
            symbol=signal.symbol,
            timeframe=signal.timeframe,
            timestamp=signal.timestamp,
            side=signal.side.value,
            rule=signal.rule,
            strategy=strategy,
            strength=float(signal.strength),
            confidence=confidence,
            price=float(signal.price),
            regime=signal.regime.value,
            reason=signal.reason,
            passed=passed,
            rejected_by=rejected_by,
            indicators=_jsonable(signal.indicators),
            trace=_jsonable(list(trace)),
            created_at=created_at if created_at is not None else now_ms(),
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return row.id

    def add_candidate(
        self, mode: Mode | str, candidate: Candidate, *, passed: bool, rejected_by: str | None
    ) -> int:
        """Store a candidate as a signal row: its first signal, confidence and full trace."""
        first = candidate.signals[0] if candidate.signals else None
        rules = "+".join(s.rule for s in candidate.signals) or candidate.strategy
        reason = "; ".join(s.reason for s in candidate.signals)
        signal = Signal(
            symbol=candidate.symbol,
            timeframe=candidate.timeframe,
            timestamp=candidate.timestamp,
            side=candidate.side,
            rule=rules[:64],
            strength=first.strength if first else candidate.confidence,
            price=candidate.price,
            reason=reason,
            regime=candidate.regime,
            indicators=dict(first.indicators) if first else {},
        )
        return self.add(
            mode,
            signal,
            strategy=candidate.strategy,
            passed=passed,
            rejected_by=rejected_by,
            confidence=candidate.confidence,
            trace=candidate.trace,
        )

    def recent(
        self,
        mode: Mode | str,
        *,
        limit: int = 50,
        offset: int = 0,
        symbol: str | None = None,
        passed: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first."""
        limit, offset = _page(limit, offset)
        query = select(SignalRow).where(SignalRow.mode == _mode(mode))
        if symbol:
            query = query.where(SignalRow.symbol == symbol)
        if passed is not None:
            query = query.where(SignalRow.passed == passed)
        query = query.order_by(SignalRow.timestamp.desc(), SignalRow.id.desc())
        with self.db.session() as session:
            rows = session.scalars(query.limit(limit).offset(offset)).all()
            return [row_to_dict(r) for r in rows]

    def rejection_counts(self, mode: Mode | str, since: int = 0) -> dict[str, int]:
        """How many signals each filter rejected since ``since``."""
        query = (
            select(SignalRow.rejected_by, func.count())
            .where(SignalRow.mode == _mode(mode), SignalRow.rejected_by.is_not(None))
            .where(SignalRow.timestamp >= since)
            .group_by(SignalRow.rejected_by)
        )
        with self.db.session() as session:
            return {str(k): int(v) for k, v in session.execute(query).all()}


class AdvisorCallRepository(_Repository):
    """The LLM audit log."""

    def add(self, mode: Mode | str, **fields: Any) -> int:
        """Store one advisor call; ``fields`` are :class:`AdvisorCallRow` columns."""
        fields.setdefault("created_at", now_ms())
        fields.setdefault("timestamp", fields["created_at"])
        for key in ("parsed", "errors"):
            if key in fields:
                fields[key] = _jsonable(fields[key])
        row = AdvisorCallRow(mode=_mode(mode), **fields)
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return row.id

    def count_since(self, since_ms: int, *, symbol: str | None = None) -> int:
        """Calls actually sent to an LLM since ``since_ms`` (for the hourly budget; all modes,
        because the budget is about money spent)."""
        query = select(func.count()).select_from(AdvisorCallRow)
        query = query.where(AdvisorCallRow.created_at >= since_ms)
        query = query.where(AdvisorCallRow.raw_answer.is_not(None) | AdvisorCallRow.valid)
        if symbol:
            query = query.where(AdvisorCallRow.symbol == symbol)
        with self.db.session() as session:
            return int(session.scalar(query) or 0)

    def sent_times_since(self, since_ms: int) -> list[int]:
        """``created_at`` of every call sent since ``since_ms``, oldest first."""
        query = (
            select(AdvisorCallRow.created_at)
            .where(AdvisorCallRow.created_at >= since_ms, AdvisorCallRow.fallback.is_(None))
            .order_by(AdvisorCallRow.created_at)
        )
        with self.db.session() as session:
            return [int(t) for t in session.scalars(query).all()]

    def last_for_symbol(self, symbol: str) -> dict[str, Any] | None:
        """The newest call for ``symbol`` that reached the LLM (for the per-symbol cooldown)."""
        query = (
            select(AdvisorCallRow)
            .where(AdvisorCallRow.symbol == symbol, AdvisorCallRow.fallback.is_(None))
            .order_by(AdvisorCallRow.created_at.desc(), AdvisorCallRow.id.desc())
            .limit(1)
        )
        with self.db.session() as session:
            row = session.scalars(query).first()
            return row_to_dict(row) if row else None

    def find_by_prompt_hash(self, prompt_hash: str) -> dict[str, Any] | None:
        """The newest recorded answer to an identical prompt (for deterministic replay)."""
        query = (
            select(AdvisorCallRow)
            .where(
                AdvisorCallRow.prompt_hash == prompt_hash, AdvisorCallRow.raw_answer.is_not(None)
            )
            .order_by(AdvisorCallRow.id.desc())
            .limit(1)
        )
        with self.db.session() as session:
            row = session.scalars(query).first()
            return row_to_dict(row) if row else None

    def recent(
        self, mode: Mode | str, *, limit: int = 50, offset: int = 0, symbol: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest first."""
        limit, offset = _page(limit, offset)
        query = select(AdvisorCallRow).where(AdvisorCallRow.mode == _mode(mode))
        if symbol:
            query = query.where(AdvisorCallRow.symbol == symbol)
        query = query.order_by(AdvisorCallRow.created_at.desc(), AdvisorCallRow.id.desc())
        with self.db.session() as session:
            return [row_to_dict(r) for r in session.scalars(query.limit(limit).offset(offset))]


class RiskDecisionRepository(_Repository):
    """Risk approvals and rejections."""

    def add(
        self,
        mode: Mode | str,
        decision: RiskDecision,
        *,
        signal_id: int | None = None,
        params_version: int | None = None,
        created_at: int | None = None,
    ) -> int:
        """Store a decision; return its id."""
        intent = decision.intent
        row = RiskDecisionRow(
            mode=_mode(mode),
            symbol=decision.symbol,
            side=decision.side.value,
            timestamp=decision.timestamp,
            approved=decision.approved,
            reason_code=decision.reason_code,
            message=decision.message,
            amount=getattr(intent, "amount", None),
            price=getattr(intent, "price", None),
            stop_loss=getattr(intent, "stop_loss", None),
            take_profit=getattr(intent, "take_profit", None),
            signal_id=signal_id,
            params_version=params_version,
            adjustments=list(decision.adjustments),
            checks=_jsonable(decision.checks),
            created_at=created_at if created_at is not None else now_ms(),
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return row.id

    def recent(
        self,
        mode: Mode | str,
        *,
        limit: int = 50,
        offset: int = 0,
        approved: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first."""
        limit, offset = _page(limit, offset)
        query = select(RiskDecisionRow).where(RiskDecisionRow.mode == _mode(mode))
        if approved is not None:
            query = query.where(RiskDecisionRow.approved == approved)
        query = query.order_by(RiskDecisionRow.timestamp.desc(), RiskDecisionRow.id.desc())
        with self.db.session() as session:
            return [row_to_dict(r) for r in session.scalars(query.limit(limit).offset(offset))]

    def rejection_counts(self, mode: Mode | str, since: int = 0) -> dict[str, int]:
        """Rejections per reason code since ``since``."""
        query = (
            select(RiskDecisionRow.reason_code, func.count())
            .where(RiskDecisionRow.mode == _mode(mode), RiskDecisionRow.approved.is_(False))
            .where(RiskDecisionRow.timestamp >= since)
            .group_by(RiskDecisionRow.reason_code)
        )
        with self.db.session() as session:
            return {str(k): int(v) for k, v in session.execute(query).all()}


def _order_from_row(row: OrderRow) -> Order:
    return Order(
        mode=Mode(row.mode),
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        type=OrderType(row.type),
        amount=row.amount,
        status=OrderStatus(row.status),
        created_at=row.created_at,
        price=row.price,
        exchange_order_id=row.exchange_order_id,
        filled=row.filled,
        average_price=row.average_price,
        fee=row.fee,
        fee_currency=row.fee_currency,
        updated_at=row.updated_at,
        purpose=row.purpose,
        intent_id=row.intent_id,
        error=row.error,
    )


class OrderRepository(_Repository):
    """Orders, keyed by ``(mode, client_order_id)``."""

    def link_risk_decision(self, mode: Mode | str, intent_id: str, risk_decision_id: int) -> int:
        """Point the orders of one intent at the risk decision that approved it; returns how
        many orders were linked (orders already linked keep their link)."""
        query = (
            update(OrderRow)
            .where(
                OrderRow.mode == _mode(mode),
                OrderRow.intent_id == intent_id,
                OrderRow.risk_decision_id.is_(None),
            )
            .values(risk_decision_id=risk_decision_id)
        )
        with self.db.session() as session:
            return int(session.execute(query).rowcount or 0)  # type: ignore[attr-defined]

    def add(
        self,
        order: Order,
        *,
        position_id: int | None = None,
        risk_decision_id: int | None = None,
    ) -> int:
        """Record an order before it is sent; a duplicate client id raises ``ValueError``."""
        row = OrderRow(
            mode=order.mode.value,
            client_order_id=order.client_order_id,
            exchange_order_id=order.exchange_order_id,
            symbol=order.symbol,
            side=order.side.value,
            type=order.type.value,
            amount=order.amount,
            price=order.price,
            status=order.status.value,
            filled=order.filled,
            average_price=order.average_price,
            fee=order.fee,
            fee_currency=order.fee_currency,
            purpose=order.purpose,
            intent_id=order.intent_id,
            position_id=position_id,
            risk_decision_id=risk_decision_id,
            error=order.error,
            created_at=order.created_at,
            updated_at=order.updated_at or order.created_at,
        )
        try:
            with self.db.session() as session:
                session.add(row)
                session.flush()
                return row.id
        except IntegrityError as exc:
            raise ValueError(f"order {order.client_order_id} already exists") from exc

    def get(self, mode: Mode | str, client_order_id: str) -> Order | None:
        """The order with this client id in this mode, or None."""
        query = select(OrderRow).where(
            OrderRow.mode == _mode(mode), OrderRow.client_order_id == client_order_id
        )
        with self.db.session() as session:
            row = session.scalars(query).first()
            return _order_from_row(row) if row else None

    def position_id(self, mode: Mode | str, client_order_id: str) -> int | None:
        """The position an order belongs to, if any."""
        query = select(OrderRow.position_id).where(
            OrderRow.mode == _mode(mode), OrderRow.client_order_id == client_order_id
        )
        with self.db.session() as session:
            return session.scalar(query)

    def update(self, mode: Mode | str, client_order_id: str, **fields: Any) -> None:
        """Update columns of one order (status, filled, average_price, fee, …)."""
        for key, value in list(fields.items()):
            if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
                fields[key] = value.value
        fields.setdefault("updated_at", now_ms())
        query = (
            update(OrderRow)
            .where(OrderRow.mode == _mode(mode), OrderRow.client_order_id == client_order_id)
            .values(**fields)
        )
        with self.db.session() as session:
            result = session.execute(query)
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise KeyError(f"no {mode} order {client_order_id}")

    def open_orders(self, mode: Mode | str, symbol: str | None = None) -> list[Order]:
        """Orders that may still fill (pending, open, partially filled or unresolved)."""
        query = select(OrderRow).where(
            OrderRow.mode == _mode(mode), OrderRow.status.in_(_OPEN_STATUSES)
        )
        if symbol:
            query = query.where(OrderRow.symbol == symbol)
        with self.db.session() as session:
            return [_order_from_row(r) for r in session.scalars(query.order_by(OrderRow.id))]

    def recent(
        self, mode: Mode | str, *, limit: int = 50, offset: int = 0, symbol: str | None = None
    ) -> list[Order]:
        """Newest first."""
        limit, offset = _page(limit, offset)
        query = select(OrderRow).where(OrderRow.mode == _mode(mode))
        if symbol:
            query = query.where(OrderRow.symbol == symbol)
        query = query.order_by(OrderRow.created_at.desc(), OrderRow.id.desc())
        with self.db.session() as session:
            return [_order_from_row(r) for r in session.scalars(query.limit(limit).offset(offset))]


def _fill_from_row(row: FillRow) -> Fill:
    return Fill(
        mode=Mode(row.mode),
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        amount=row.amount,
        price=row.price,
        fee=row.fee,
        fee_currency=row.fee_currency,
        timestamp=row.timestamp,
        trade_id=row.trade_id,
        is_maker=row.is_maker,
        intended_price=row.intended_price,
        slippage_bps=row.slippage_bps,
        latency_ms=row.latency_ms,
        fee_quote=row.fee_quote,
        fee_rate=row.fee_rate,
    )


class FillRepository(_Repository):
    """Fills; a fill is stored once whatever how often it is reported."""

    def add(self, fill: Fill) -> bool:
        """Store a fill; return False (and change nothing) when it is already stored."""
        with self.db.session() as session:
            exists = session.scalar(
                select(func.count())
                .select_from(FillRow)
                .where(
                    FillRow.mode == fill.mode.value,
                    FillRow.client_order_id == fill.client_order_id,
                    FillRow.trade_id == fill.trade_id,
                )
            )
            if exists:
                return False
            order_id = session.scalar(
                select(OrderRow.id).where(
                    OrderRow.mode == fill.mode.value,
                    OrderRow.client_order_id == fill.client_order_id,
                )
            )
            session.add(
                FillRow(
                    mode=fill.mode.value,
                    order_id=order_id,
                    client_order_id=fill.client_order_id,
                    trade_id=fill.trade_id,
                    symbol=fill.symbol,
                    side=fill.side.value,
                    amount=fill.amount,
                    price=fill.price,
                    fee=fill.fee,
                    fee_currency=fill.fee_currency,
                    is_maker=fill.is_maker,
                    intended_price=fill.intended_price,
                    slippage_bps=fill.slippage_bps,
                    latency_ms=fill.latency_ms,
                    timestamp=fill.timestamp,
                    fee_quote=fill.fee_quote,
                    fee_rate=fill.fee_rate,
                )
            )
        return True

    def for_order(self, mode: Mode | str, client_order_id: str) -> list[Fill]:
        """Every fill of one order, oldest first."""
        query = (
            select(FillRow)
            .where(FillRow.mode == _mode(mode), FillRow.client_order_id == client_order_id)
            .order_by(FillRow.timestamp, FillRow.id)
        )
        with self.db.session() as session:
            return [_fill_from_row(r) for r in session.scalars(query)]

    def recent(
        self, mode: Mode | str, *, limit: int = 50, offset: int = 0, symbol: str | None = None
    ) -> list[Fill]:
        """Newest first."""
        limit, offset = _page(limit, offset)
        query = select(FillRow).where(FillRow.mode == _mode(mode))
        if symbol:
            query = query.where(FillRow.symbol == symbol)
        query = query.order_by(FillRow.timestamp.desc(), FillRow.id.desc())
        with self.db.session() as session:
            return [_fill_from_row(r) for r in session.scalars(query.limit(limit).offset(offset))]


def _position_from_row(row: PositionRow) -> Position:
    return Position(
        mode=Mode(row.mode),
        symbol=row.symbol,
        amount=row.amount,
        entry_price=row.entry_price,
        opened_at=row.opened_at,
        stop_loss=row.stop_loss,
        take_profit=row.take_profit,
        trailing_stop_pct=row.trailing_stop_pct,
        highest_price=row.highest_price,
        fees_paid=row.fees_paid,
        realized_pnl=row.realized_pnl,
        closed_at=row.closed_at,
        exit_price=row.exit_price,
        exit_reason=row.exit_reason,
        id=row.id,
        extra={str(k): str(v) for k, v in (row.extra or {}).items()},
    )


class PositionRepository(_Repository):
    """Positions. Exits are claimed atomically so two processes never exit the same position."""

    def open(self, position: Position) -> int:
        """Store a new open position; return its id."""
        row = PositionRow(
            mode=position.mode.value,
            symbol=position.symbol,
            amount=position.amount,
            entry_price=position.entry_price,
            opened_at=position.opened_at,
            stop_loss=position.stop_loss,
            take_profit=position.take_profit,
            trailing_stop_pct=position.trailing_stop_pct,
            highest_price=position.highest_price,
            fees_paid=position.fees_paid,
            realized_pnl=position.realized_pnl,
            extra=dict(position.extra),
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return row.id

    def get(self, mode: Mode | str, position_id: int) -> Position | None:
        """One position of this mode by id."""
        query = select(PositionRow).where(
            PositionRow.mode == _mode(mode), PositionRow.id == position_id
        )
        with self.db.session() as session:
            row = session.scalars(query).first()
            return _position_from_row(row) if row else None

    def open_positions(self, mode: Mode | str, symbol: str | None = None) -> list[Position]:
        """Positions not closed yet."""
        query = select(PositionRow).where(
            PositionRow.mode == _mode(mode), PositionRow.closed_at.is_(None)
        )
        if symbol:
            query = query.where(PositionRow.symbol == symbol)
        with self.db.session() as session:
            return [_position_from_row(r) for r in session.scalars(query.order_by(PositionRow.id))]

    def closed_positions(
        self, mode: Mode | str, *, limit: int = 50, offset: int = 0, since: int = 0
    ) -> list[Position]:
        """Closed positions (trades), newest first."""
        limit, offset = _page(limit, offset)
        query = (
            select(PositionRow)
            .where(PositionRow.mode == _mode(mode), PositionRow.closed_at.is_not(None))
            .where(PositionRow.closed_at >= since)
            .order_by(PositionRow.closed_at.desc(), PositionRow.id.desc())
        )
        with self.db.session() as session:
            rows = session.scalars(query.limit(limit).offset(offset))
            return [_position_from_row(r) for r in rows]

    def update(self, mode: Mode | str, position_id: int, **fields: Any) -> None:
        """Update columns of one position."""
        query = (
            update(PositionRow)
            .where(PositionRow.mode == _mode(mode), PositionRow.id == position_id)
            .values(**fields)
        )
        with self.db.session() as session:
            if session.execute(query).rowcount == 0:  # type: ignore[attr-defined]
                raise KeyError(f"no {mode} position {position_id}")

    def claim_exit(self, mode: Mode | str, position_id: int) -> bool:
        """Atomically mark an open position as being exited.

        A conditional UPDATE is a compare-and-set on both SQLite and PostgreSQL: of two
        processes racing to exit the same position, exactly one gets True.
        """
        query = (
            update(PositionRow)
            .where(
                PositionRow.mode == _mode(mode),
                PositionRow.id == position_id,
                PositionRow.closed_at.is_(None),
                PositionRow.exiting.is_(False),
            )
            .values(exiting=True)
        )
        with self.db.session() as session:
            return bool(session.execute(query).rowcount == 1)  # type: ignore[attr-defined]

    def release_exit(self, mode: Mode | str, position_id: int) -> None:
        """Give up an exit claim (the exit order failed; the position stays open)."""
        self.update(mode, position_id, exiting=False)

    def close(
        self,
        mode: Mode | str,
        position_id: int,
        *,
        closed_at: int,
        exit_price: Decimal,
        exit_reason: str,
        realized_pnl: Decimal,
        fees_paid: Decimal,
        amount: Decimal | None = None,
    ) -> None:
        """Mark a position closed with its exit and realised PnL; ``amount`` (when given)
        replaces the held amount (0 after the exit) by the size the position closed."""
        sized = {} if amount is None else {"amount": amount}
        self.update(
            mode,
            position_id,
            **sized,
            closed_at=closed_at,
            exit_price=exit_price,
            exit_reason=exit_reason,
            realized_pnl=realized_pnl,
            fees_paid=fees_paid,
            exiting=False,
        )


class BalanceRepository(_Repository):
    """Balances per mode and currency."""

    def get(self, mode: Mode | str, currency: str) -> Balance | None:
        """One balance, or None."""
        query = select(BalanceRow).where(
            BalanceRow.mode == _mode(mode), BalanceRow.currency == currency
        )
        with self.db.session() as session:
            row = session.scalars(query).first()
            if row is None:
                return None
            return Balance(Mode(row.mode), row.currency, row.free, row.used)

    def all(self, mode: Mode | str) -> list[Balance]:
        """Every balance of this mode."""
        query = (
            select(BalanceRow).where(BalanceRow.mode == _mode(mode)).order_by(BalanceRow.currency)
        )
        with self.db.session() as session:
            return [
                Balance(Mode(r.mode), r.currency, r.free, r.used) for r in session.scalars(query)
            ]

    def set_many(self, mode: Mode | str, balances: dict[str, tuple[Decimal, Decimal]]) -> None:
        """Set ``{currency: (free, used)}`` in one transaction (inserting missing rows)."""
        stamp = now_ms()
        with self.db.session() as session:
            for currency, (free, used) in balances.items():
                row = session.scalars(
                    select(BalanceRow).where(
                        BalanceRow.mode == _mode(mode), BalanceRow.currency == currency
                    )
                ).first()
                if row is None:
                    session.add(
                        BalanceRow(
                            mode=_mode(mode),
                            currency=currency,
                            free=free,
                            used=used,
                            updated_at=stamp,
                        )
                    )
                else:
                    row.free, row.used, row.updated_at = free, used, stamp

    def clear(self, mode: Mode | str) -> None:
        """Delete every balance of this mode (paper reset)."""
        with self.db.session() as session:
            session.query(BalanceRow).filter(BalanceRow.mode == _mode(mode)).delete()


class EquityRepository(_Repository):
    """Equity snapshots."""

    def add(self, point: EquityPoint) -> int:
        """Store one point; return its id."""
        row = EquitySnapshotRow(
            mode=point.mode.value,
            timestamp=point.timestamp,
            equity=point.equity,
            cash=point.cash,
            positions_value=point.positions_value,
            details=dict(point.details),
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return row.id

    def series(
        self, mode: Mode | str, *, since: int = 0, limit: int = MAX_PAGE
    ) -> list[EquityPoint]:
        """Points since ``since`` in time order (at most ``limit``, the newest ones)."""
        limit, _ = _page(limit, 0)
        query = (
            select(EquitySnapshotRow)
            .where(EquitySnapshotRow.mode == _mode(mode), EquitySnapshotRow.timestamp >= since)
            .order_by(EquitySnapshotRow.timestamp.desc(), EquitySnapshotRow.id.desc())
            .limit(limit)
        )
        with self.db.session() as session:
            rows = list(session.scalars(query))
        rows.reverse()
        return [
            EquityPoint(
                Mode(r.mode), r.timestamp, r.equity, r.cash, r.positions_value, dict(r.details)
            )
            for r in rows
        ]

    def between(
        self, mode: Mode | str, start: int, end: int, *, page: int = MAX_PAGE
    ) -> Iterator[EquityPoint]:
        """Every point with ``start <= timestamp < end``, oldest first, read ``page`` rows at
        a time (a week of 1-minute points is 10,080: no cap, and never all in one query)."""
        after: tuple[int, int] | None = None
        while True:
            query = select(EquitySnapshotRow).where(
                EquitySnapshotRow.mode == _mode(mode),
                EquitySnapshotRow.timestamp >= start,
                EquitySnapshotRow.timestamp < end,
            )
            if after is not None:
                at, row_id = after
                query = query.where(
                    (EquitySnapshotRow.timestamp > at)
                    | ((EquitySnapshotRow.timestamp == at) & (EquitySnapshotRow.id > row_id))
                )
            query = query.order_by(EquitySnapshotRow.timestamp, EquitySnapshotRow.id).limit(page)
            with self.db.session() as session:
                rows = list(session.scalars(query))
            for r in rows:
                yield EquityPoint(
                    Mode(r.mode), r.timestamp, r.equity, r.cash, r.positions_value, dict(r.details)
                )
            if len(rows) < page:
                return
            after = (rows[-1].timestamp, rows[-1].id)

    def latest(self, mode: Mode | str) -> EquityPoint | None:
        """The newest point."""
        points = self.series(mode, limit=1)
        return points[-1] if points else None

    def peak(self, mode: Mode | str) -> Decimal | None:
        """The highest equity ever recorded in this mode."""
        query = select(EquitySnapshotRow.equity).where(EquitySnapshotRow.mode == _mode(mode))
        with self.db.session() as session:
            values = list(session.scalars(query))
        return max(values) if values else None


class RiskParamsRepository(_Repository):
    """Versioned risk parameters per mode (a change is a new version; old ones stay)."""

    def latest(self, mode: Mode | str) -> dict[str, Any] | None:
        """The mode's newest version: ``{mode, version, params, source, comment, created_at}``."""
        query = (
            select(RiskParameterVersionRow)
            .where(RiskParameterVersionRow.mode == _mode(mode))
            .order_by(RiskParameterVersionRow.version.desc())
        )
        with self.db.session() as session:
            row = session.scalars(query.limit(1)).first()
            return row_to_dict(row) if row else None

    def add(
        self, mode: Mode | str, params: dict[str, Any], *, source: str, comment: str = ""
    ) -> int:
        """Store the mode's next version; return its number."""
        try:
            return self._add_once(_mode(mode), params, source, comment)
        except IntegrityError:  # another writer took that number: take the next one
            return self._add_once(_mode(mode), params, source, comment)

    def _add_once(self, mode: str, params: dict[str, Any], source: str, comment: str) -> int:
        with self.db.session() as session:
            current = session.scalar(
                select(func.max(RiskParameterVersionRow.version)).where(
                    RiskParameterVersionRow.mode == mode
                )
            )
            version = int(current or 0) + 1
            session.add(
                RiskParameterVersionRow(
                    mode=mode,
                    version=version,
                    params=_jsonable(params),
                    source=source,
                    comment=comment,
                    created_at=now_ms(),
                )
            )
        return version

    def history(self, mode: Mode | str, limit: int = 50) -> list[dict[str, Any]]:
        """The mode's versions, newest first."""
        limit, _ = _page(limit, 0)
        query = (
            select(RiskParameterVersionRow)
            .where(RiskParameterVersionRow.mode == _mode(mode))
            .order_by(RiskParameterVersionRow.version.desc())
        )
        with self.db.session() as session:
            return [row_to_dict(r) for r in session.scalars(query.limit(limit))]


class RiskStateRepository(_Repository):
    """Small persistent key/value state per mode for the risk manager."""

    def get(self, mode: Mode | str, key: str) -> dict[str, Any] | None:
        """The stored value, or None."""
        query = select(RiskStateRow.value).where(
            RiskStateRow.mode == _mode(mode), RiskStateRow.key == key
        )
        with self.db.session() as session:
            value = session.scalar(query)
            return dict(value) if value is not None else None

    def get_many(self, mode: Mode | str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored values of ``keys`` that exist, in one query."""
        query = select(RiskStateRow.key, RiskStateRow.value).where(
            RiskStateRow.mode == _mode(mode), RiskStateRow.key.in_(list(keys))
        )
        with self.db.session() as session:
            return {str(key): dict(value) for key, value in session.execute(query)}

    def set(self, mode: Mode | str, key: str, value: dict[str, Any]) -> None:
        """Insert or replace the value."""
        with self.db.session() as session:
            row = session.scalars(
                select(RiskStateRow).where(
                    RiskStateRow.mode == _mode(mode), RiskStateRow.key == key
                )
            ).first()
            if row is None:
                session.add(
                    RiskStateRow(
                        mode=_mode(mode), key=key, value=_jsonable(value), updated_at=now_ms()
                    )
                )
            else:
                row.value = _jsonable(value)
                row.updated_at = now_ms()


class MlModelRepository(_Repository):
    """The ML model registry."""

    def add(
        self,
        *,
        name: str,
        version: str,
        path: str,
        trained_at: int,
        metrics: dict[str, Any],
        params: dict[str, Any] | None = None,
        active: bool = True,
    ) -> int:
        """Register a model (and make it the active one by default)."""
        with self.db.session() as session:
            if active:
                session.execute(
                    update(MlModelRow).where(MlModelRow.name == name).values(active=False)
                )
            row = MlModelRow(
                name=name,
                version=version,
                path=path,
                trained_at=trained_at,
                metrics=_jsonable(metrics),
                params=_jsonable(params or {}),
                active=active,
            )
            session.add(row)
            session.flush()
            return row.id

    def latest(self, name: str | None = None) -> dict[str, Any] | None:
        """The newest model (optionally of one name)."""
        query = select(MlModelRow).order_by(MlModelRow.trained_at.desc(), MlModelRow.id.desc())
        if name:
            query = query.where(MlModelRow.name == name)
        with self.db.session() as session:
            row = session.scalars(query.limit(1)).first()
            return row_to_dict(row) if row else None


class ChatRepository(_Repository):
    """Chat messages."""

    def add(
        self,
        role: str,
        content: str,
        *,
        conversation: str = "default",
        meta: dict[str, Any] | None = None,
    ) -> int:
        """Store a message; return its id."""
        row = ChatMessageRow(
            conversation=conversation,
            role=role,
            content=content,
            meta=_jsonable(meta or {}),
            created_at=now_ms(),
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return row.id

    def recent(self, conversation: str = "default", limit: int = 50) -> list[dict[str, Any]]:
        """The last messages in time order."""
        limit, _ = _page(limit, 0)
        query = (
            select(ChatMessageRow)
            .where(ChatMessageRow.conversation == conversation)
            .order_by(ChatMessageRow.id.desc())
            .limit(limit)
        )
        with self.db.session() as session:
            rows = [row_to_dict(r) for r in session.scalars(query)]
        rows.reverse()
        return rows


class AlertRepository(_Repository):
    """Alerts and their delivery status. ``clock`` stamps them: the wall unless the running bot
    hands its own (a demo's simulated time, so its log reads in the replay's time)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.clock: Callable[[], int] = now_ms

    def add(
        self,
        mode: Mode | str,
        *,
        event: str,
        title: str,
        body: str,
        status: str,
        dedupe_key: str | None = None,
        error: str | None = None,
        sent_at: int | None = None,
    ) -> int:
        """Store an alert; return its id."""
        row = AlertRow(
            mode=_mode(mode),
            event=event,
            title=title,
            body=body,
            status=status,
            dedupe_key=dedupe_key,
            error=error,
            created_at=self.clock(),
            sent_at=sent_at,
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return row.id

    def set_status(
        self, alert_id: int, status: str, *, error: str | None = None, sent_at: int | None = None
    ) -> None:
        """Record the delivery outcome."""
        query = (
            update(AlertRow)
            .where(AlertRow.id == alert_id)
            .values(status=status, error=error, sent_at=sent_at)
        )
        with self.db.session() as session:
            session.execute(query)

    def recent(self, mode: Mode | str, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Newest first."""
        limit, offset = _page(limit, offset)
        query = (
            select(AlertRow)
            .where(AlertRow.mode == _mode(mode))
            .order_by(AlertRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.db.session() as session:
            return [row_to_dict(r) for r in session.scalars(query)]


EventObserver = Callable[[dict[str, Any]], None]


class EventRepository(_Repository):
    """System and error events. Observers (e.g. the vault's anomaly log) see every stored
    event; one that raises is logged and never fails the caller. ``clock`` stamps an event
    stored without a time: the wall unless the running bot hands its own (a demo's simulated
    time, so its log reads in the replay's time, not the minute the replay ran)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._observers: list[EventObserver] = []
        self.clock: Callable[[], int] = now_ms

    def observe(self, observer: EventObserver) -> Callable[[], None]:
        """Call ``observer`` with each event stored from now on; returns the unsubscriber."""
        self._observers.append(observer)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._observers.remove(observer)

        return unsubscribe

    def add(
        self,
        mode: Mode | str,
        kind: str,
        message: str,
        *,
        level: str = "info",
        source: str = "",
        details: dict[str, Any] | None = None,
        created_at: int | None = None,
    ) -> int:
        """Store an event; return its id."""
        row = EventRow(
            mode=_mode(mode),
            kind=kind,
            level=level,
            source=source,
            message=message,
            details=_jsonable(details or {}),
            created_at=created_at if created_at is not None else self.clock(),
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            stored = row_to_dict(row)
        for observer in list(self._observers):
            try:
                observer(stored)
            except Exception as exc:  # an observer must not fail the one storing the event
                logger.warning("event observer failed: {}", exc)
        return int(stored["id"])

    def recent(
        self,
        mode: Mode | str,
        *,
        limit: int = 50,
        offset: int = 0,
        kind: str | None = None,
        level: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, optionally of one kind or level."""
        limit, offset = _page(limit, offset)
        query = select(EventRow).where(EventRow.mode == _mode(mode))
        if kind:
            query = query.where(EventRow.kind == kind)
        if level:
            query = query.where(EventRow.level == level)
        query = query.order_by(EventRow.created_at.desc(), EventRow.id.desc())
        with self.db.session() as session:
            return [row_to_dict(r) for r in session.scalars(query.limit(limit).offset(offset))]


class Repositories:
    """Every repository over one database, so a stage can be handed just what it needs."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self.signals = SignalRepository(database)
        self.advisor_calls = AdvisorCallRepository(database)
        self.risk_decisions = RiskDecisionRepository(database)
        self.orders = OrderRepository(database)
        self.fills = FillRepository(database)
        self.positions = PositionRepository(database)
        self.balances = BalanceRepository(database)
        self.equity = EquityRepository(database)
        self.risk_params = RiskParamsRepository(database)
        self.risk_state = RiskStateRepository(database)
        self.ml_models = MlModelRepository(database)
        self.chat = ChatRepository(database)
        self.alerts = AlertRepository(database)
        self.events = EventRepository(database)
