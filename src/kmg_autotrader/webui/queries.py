"""Read-only queries the repositories do not offer (joins of the decision chain, downsampled
equity, change markers for live updates). Nothing here writes; everything filters on the mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, literal, select, union_all

from kmg_autotrader.domain import Mode
from kmg_autotrader.storage.database import Database
from kmg_autotrader.storage.models import (
    AdvisorCallRow,
    AlertRow,
    EquitySnapshotRow,
    EventRow,
    OrderRow,
    PositionRow,
    RiskDecisionRow,
    SignalRow,
)
from kmg_autotrader.storage.repositories import row_to_dict


def _f(value: Decimal | float | int | None) -> float:
    return float(value) if value is not None else 0.0


def equity_values(db: Database, mode: Mode) -> tuple[list[int], list[float]]:
    """The whole equity curve as (timestamps, equity), oldest first (two columns only)."""
    query = (
        select(EquitySnapshotRow.timestamp, EquitySnapshotRow.equity)
        .where(EquitySnapshotRow.mode == mode.value)
        .order_by(EquitySnapshotRow.timestamp, EquitySnapshotRow.id)
    )
    with db.session() as session:
        rows = session.execute(query).all()
    return [int(r[0]) for r in rows], [float(r[1]) for r in rows]


def equity_curve(
    db: Database, mode: Mode, *, since: int, until: int | None, max_points: int
) -> tuple[list[dict[str, Any]], int]:
    """At most ``max_points`` points in ``[since, until]``: the last point of each time bucket."""
    where = [EquitySnapshotRow.mode == mode.value, EquitySnapshotRow.timestamp >= since]
    if until is not None:
        where.append(EquitySnapshotRow.timestamp <= until)
    with db.session() as session:
        total, first, last = session.execute(
            select(
                func.count(),
                func.min(EquitySnapshotRow.timestamp),
                func.max(EquitySnapshotRow.timestamp),
            ).where(*where)
        ).one()
        total = int(total or 0)
        if total == 0:
            return [], 0
        query = select(EquitySnapshotRow).where(*where)
        if total > max_points:
            # integer bucket index works the same on SQLite and PostgreSQL (bigint / bigint)
            bucket = max(1, (int(last) - int(first)) // max_points + 1)
            ids = (
                select(func.max(EquitySnapshotRow.id))
                .where(*where)
                .group_by((EquitySnapshotRow.timestamp - int(first)) // bucket)
            )
            query = query.where(EquitySnapshotRow.id.in_(ids))
        query = query.order_by(EquitySnapshotRow.timestamp, EquitySnapshotRow.id)
        rows = session.scalars(query).all()
        points = [
            {
                "t": int(r.timestamp),
                "equity": _f(r.equity),
                "cash": _f(r.cash),
                "positions_value": _f(r.positions_value),
            }
            for r in rows
        ]
    return points[-max_points:], total


def closed_trades(db: Database, mode: Mode, *, cap: int = 100_000) -> list[dict[str, Any]]:
    """Closed positions (for metrics), oldest first."""
    query = (
        select(
            PositionRow.id,
            PositionRow.symbol,
            PositionRow.opened_at,
            PositionRow.closed_at,
            PositionRow.entry_price,
            PositionRow.exit_price,
            PositionRow.amount,
            PositionRow.fees_paid,
            PositionRow.realized_pnl,
        )
        .where(PositionRow.mode == mode.value, PositionRow.closed_at.is_not(None))
        .order_by(PositionRow.closed_at, PositionRow.id)
        .limit(cap)
    )
    with db.session() as session:
        rows = [dict(r._mapping) for r in session.execute(query)]
    _fill_amounts(db, mode, rows)
    return rows


def _fill_amounts(db: Database, mode: Mode, rows: list[dict[str, Any]]) -> None:
    """Give closed positions recorded with amount 0 the amount their buy orders filled."""
    empty = [int(r["id"]) for r in rows if not r["amount"]]
    for start in range(0, len(empty), 500):  # bounded IN lists
        amounts = entry_amounts(db, mode, empty[start : start + 500])
        for row in rows:
            if not row["amount"] and int(row["id"]) in amounts:
                row["amount"] = amounts[int(row["id"])]


def _by_signal(db: Database, row_type: Any, mode: Mode, ids: Sequence[int]) -> dict[int, Any]:
    if not ids:
        return {}
    query = (
        select(row_type)
        .where(row_type.mode == mode.value, row_type.signal_id.in_(list(ids)))
        .order_by(row_type.id)
    )
    with db.session() as session:
        # the newest row per signal wins (a re-asked advisor, a re-checked candidate)
        return {int(r.signal_id): row_to_dict(r) for r in session.scalars(query)}


def advisor_by_signal(db: Database, mode: Mode, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The newest advisor call of each signal id."""
    return _by_signal(db, AdvisorCallRow, mode, ids)


def risk_by_signal(db: Database, mode: Mode, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The newest risk decision of each signal id."""
    return _by_signal(db, RiskDecisionRow, mode, ids)


def orders_by_risk(db: Database, mode: Mode, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Orders of each risk decision id, oldest first."""
    if not ids:
        return {}
    query = (
        select(OrderRow)
        .where(OrderRow.mode == mode.value, OrderRow.risk_decision_id.in_(list(ids)))
        .order_by(OrderRow.id)
    )
    out: dict[int, list[dict[str, Any]]] = {}
    with db.session() as session:
        for row in session.scalars(query):
            out.setdefault(int(row.risk_decision_id or 0), []).append(row_to_dict(row))
    return out


def orders_for_decisions(
    db: Database, mode: Mode, decisions: Sequence[dict[str, Any]], window_ms: int
) -> dict[int, list[dict[str, Any]]]:
    """Orders of each risk decision, oldest first.

    Linked by ``risk_decision_id``; where the execution layer left that link empty, the entry
    orders (one intent) of the same symbol and side placed within ``window_ms`` after the
    approved decision's candle.
    """
    out = orders_by_risk(db, mode, [int(d["id"]) for d in decisions])
    missing = sorted(
        (d for d in decisions if d["approved"] and int(d["id"]) not in out),
        key=lambda d: int(d["timestamp"]),
    )
    if not missing:
        return out
    low = int(missing[0]["timestamp"])
    high = int(missing[-1]["timestamp"]) + window_ms
    query = (
        select(OrderRow)
        .where(
            OrderRow.mode == mode.value,
            OrderRow.purpose == "entry",
            OrderRow.risk_decision_id.is_(None),
            OrderRow.created_at >= low,
            OrderRow.created_at <= high,
        )
        .order_by(OrderRow.created_at, OrderRow.id)
    )
    with db.session() as session:
        candidates = [row_to_dict(r) for r in session.scalars(query)]
    used: set[int] = set()
    for decision in missing:
        start = int(decision["timestamp"])
        for order in candidates:
            if (
                order["id"] not in used
                and order["symbol"] == decision["symbol"]
                and order["side"] == decision["side"]
                and start <= int(order["created_at"]) <= start + window_ms
            ):
                intent = order["intent_id"]
                group = [
                    o
                    for o in candidates
                    if o["id"] not in used
                    and (
                        o["id"] == order["id"] or (intent is not None and o["intent_id"] == intent)
                    )
                ]
                used.update(o["id"] for o in group)
                out[int(decision["id"])] = group
                break
    return out


def entry_amounts(db: Database, mode: Mode, position_ids: Sequence[int]) -> dict[int, Decimal]:
    """Filled amount of each position's buy orders (a closed position records amount 0)."""
    if not position_ids:
        return {}
    query = select(OrderRow.position_id, OrderRow.filled).where(
        OrderRow.mode == mode.value,
        OrderRow.side == "buy",
        OrderRow.position_id.in_(list(position_ids)),
    )
    out: dict[int, Decimal] = {}
    with db.session() as session:
        for position_id, filled in session.execute(query):
            if position_id is not None and filled:
                out[int(position_id)] = out.get(int(position_id), Decimal(0)) + Decimal(filled)
    return out


def advisor_rejection_counts(db: Database, mode: Mode, since: int) -> dict[str, int]:
    """Advisor answers that did not confirm a trade: ``hold``, or the fallback/invalid reason."""
    query = (
        select(AdvisorCallRow.valid, AdvisorCallRow.action, AdvisorCallRow.fallback, func.count())
        .where(AdvisorCallRow.mode == mode.value, AdvisorCallRow.timestamp >= since)
        .group_by(AdvisorCallRow.valid, AdvisorCallRow.action, AdvisorCallRow.fallback)
    )
    counts: dict[str, int] = {}
    with db.session() as session:
        for valid, action, fallback, count in session.execute(query):
            if valid and action != "hold":
                continue
            key = "hold" if valid else (fallback or "invalid_answer")
            counts[key] = counts.get(key, 0) + int(count)
    return counts


def advisor_rejections(db: Database, mode: Mode, limit: int) -> list[dict[str, Any]]:
    """The newest advisor calls that were invalid or said ``hold``."""
    query = (
        select(AdvisorCallRow)
        .where(AdvisorCallRow.mode == mode.value)
        .where((AdvisorCallRow.valid.is_(False)) | (AdvisorCallRow.action == "hold"))
        .order_by(AdvisorCallRow.timestamp.desc(), AdvisorCallRow.id.desc())
        .limit(limit)
    )
    with db.session() as session:
        return [row_to_dict(r) for r in session.scalars(query)]


def change_markers(db: Database, mode: Mode) -> dict[str, int]:
    """Cheap markers that move when something new is recorded (for the live stream)."""
    with db.session() as session:
        equity = session.scalar(
            select(func.max(EquitySnapshotRow.id)).where(EquitySnapshotRow.mode == mode.value)
        )
        order = session.scalar(
            select(func.max(OrderRow.updated_at)).where(OrderRow.mode == mode.value)
        )
        signal = session.scalar(select(func.max(SignalRow.id)).where(SignalRow.mode == mode.value))
        position = session.scalar(
            select(func.count()).where(
                PositionRow.mode == mode.value, PositionRow.closed_at.is_not(None)
            )
        )
        # an entry opens a position in its own write, maybe after the order's: a marker of its own
        newest, still_open = session.execute(
            select(
                func.max(PositionRow.id),
                func.count().filter(PositionRow.closed_at.is_(None)),
            ).where(PositionRow.mode == mode.value)
        ).one()
    return {
        "equity": int(equity or 0),
        "order": int(order or 0),
        "signal": int(signal or 0),
        "closed_positions": int(position or 0),
        "position": int(newest or 0),
        "open_positions": int(still_open or 0),
    }


def equity_since_id(
    db: Database, mode: Mode, after_id: int, limit: int = 500
) -> list[dict[str, Any]]:
    """Equity points recorded after row ``after_id``, oldest first."""
    query = (
        select(EquitySnapshotRow)
        .where(EquitySnapshotRow.mode == mode.value, EquitySnapshotRow.id > after_id)
        .order_by(EquitySnapshotRow.id)
        .limit(limit)
    )
    with db.session() as session:
        return [
            {
                "t": int(r.timestamp),
                "equity": _f(r.equity),
                "cash": _f(r.cash),
                "positions_value": _f(r.positions_value),
            }
            for r in session.scalars(query)
        ]


def orders_updated_since(
    db: Database, mode: Mode, since: int, limit: int = 50
) -> list[dict[str, Any]]:
    """Orders created or changed after ``since`` (ms), oldest change first."""
    query = (
        select(OrderRow)
        .where(OrderRow.mode == mode.value, OrderRow.updated_at > since)
        .order_by(OrderRow.updated_at, OrderRow.id)
        .limit(limit)
    )
    with db.session() as session:
        return [row_to_dict(r) for r in session.scalars(query)]


#: the unified log's sources in the order ``/logs`` merges them (ties in time keep this order)
LOG_SOURCES = ("advisor", "order", "event", "alert")


def log_skips(
    db: Database,
    mode: Mode,
    sources: Sequence[str],
    offset: int,
    *,
    symbol: str | None = None,
    level: str | None = None,
) -> dict[str, int]:
    """How many rows of each source come before position ``offset`` of the merged log.

    The merged order is time (``created_at``) newest first, then the source order above, then
    newest id first: each source's own order (its repository's ``recent``), so the rows of a
    merged page are, per source, a run starting at the returned count. The database counts
    them; nothing but ids and times crosses the wire, however deep the page.
    """
    if offset <= 0 or not sources:
        return dict.fromkeys(sources, 0)
    parts = []
    for rank, name in enumerate(LOG_SOURCES):
        if name not in sources:
            continue
        if name == "advisor":
            part = select(AdvisorCallRow.id, AdvisorCallRow.created_at.label("t")).where(
                AdvisorCallRow.mode == mode.value
            )
            if symbol is not None:
                part = part.where(AdvisorCallRow.symbol == symbol)
        elif name == "order":
            part = select(OrderRow.id, OrderRow.created_at.label("t")).where(
                OrderRow.mode == mode.value
            )
            if symbol is not None:
                part = part.where(OrderRow.symbol == symbol)
        elif name == "event":
            part = select(EventRow.id, EventRow.created_at.label("t")).where(
                EventRow.mode == mode.value
            )
            if level is not None:
                part = part.where(EventRow.level == level)
        else:
            part = select(AlertRow.id, AlertRow.created_at.label("t")).where(
                AlertRow.mode == mode.value
            )
        parts.append(part.add_columns(literal(rank).label("rank")))
    merged = union_all(*parts).subquery()
    head = (
        select(merged.c.rank)
        .order_by(merged.c.t.desc(), merged.c.rank, merged.c.id.desc())
        .limit(offset)
        .subquery()
    )
    query = select(head.c.rank, func.count()).group_by(head.c.rank)
    with db.session() as session:
        counts = {int(rank): int(n) for rank, n in session.execute(query).all()}
    return {name: counts.get(LOG_SOURCES.index(name), 0) for name in sources}
