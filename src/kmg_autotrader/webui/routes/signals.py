"""``GET /signals`` (the decision chain of each signal), rejections and LLM confidence."""

from __future__ import annotations

import math
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from kmg_autotrader.webui import queries
from kmg_autotrader.webui.context import WebContext, get_context
from kmg_autotrader.webui.routes.common import (
    SECURED,
    LimitQuery,
    OffsetQuery,
    num,
    num0,
    time_query,
)
from kmg_autotrader.webui.schemas import (
    ConfidenceResponse,
    RejectionsResponse,
    SignalsResponse,
)

router = APIRouter(tags=["signals"], **SECURED)

SymbolQuery = Query(None, max_length=32, description="Only this symbol, e.g. BTC/USDT.")


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _trace(raw: Any) -> list[dict[str, Any]]:
    steps = []
    for step in raw if isinstance(raw, list) else []:
        if isinstance(step, dict):
            details = step.get("details")
            steps.append(
                {
                    "name": str(step.get("name", "")),
                    "passed": bool(step.get("passed", False)),
                    "reason": str(step.get("reason", "")),
                    "details": details if isinstance(details, dict) else {},
                }
            )
    return steps


def _advisor(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    parsed = row.get("parsed") if isinstance(row.get("parsed"), dict) else {}
    reasoning = parsed.get("reasoning") if parsed else None
    return {
        "id": row["id"],
        "action": row["action"],
        "confidence": row["confidence"],
        "valid": bool(row["valid"]),
        "fallback": row["fallback"],
        "model": row["model"] or "",
        "latency_ms": row["latency_ms"],
        "reasoning": str(reasoning) if reasoning is not None else None,
    }


def _risk(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": row["id"],
        "approved": bool(row["approved"]),
        "reason_code": row["reason_code"],
        "message": row["message"],
        "amount": num(row["amount"]),
        "adjustments": [str(a) for a in row["adjustments"] or []],
    }


def order_out(row: dict[str, Any]) -> dict[str, Any]:
    """An order row as :class:`~kmg_autotrader.webui.schemas.OrderOut` data."""
    return {
        "client_order_id": row["client_order_id"],
        "symbol": row["symbol"],
        "side": row["side"],
        "type": row["type"],
        "status": row["status"],
        "amount": num0(row["amount"]),
        "filled": num0(row["filled"]),
        "price": num(row["price"]),
        "average_price": num(row["average_price"]),
        "fee": num0(row["fee"]),
        "purpose": row["purpose"],
        "created_at": row["created_at"],
        "error": row["error"],
    }


def _stage(
    signal: dict[str, Any],
    advisor: dict[str, Any] | None,
    risk: dict[str, Any] | None,
    orders: list[dict[str, Any]],
) -> str:
    if not signal["passed"]:
        return "filtered"
    if risk is not None:
        if not risk["approved"]:
            return "risk_rejected"
        return "ordered" if orders else "approved"
    if advisor is not None and (not advisor["valid"] or advisor["action"] != signal["side"]):
        return "advisor_vetoed"
    return "passed"


@router.get("/signals", response_model=SignalsResponse)
def signals(
    status: Literal["all", "passed", "rejected"] = Query(
        "all", description="Only signals that passed the filters, or only rejected ones."
    ),
    symbol: str | None = SymbolQuery,
    limit: int = LimitQuery,
    offset: int = OffsetQuery,
    context: WebContext = Depends(get_context),
) -> dict[str, Any]:
    """Signals, newest first, each with its filter trace, advisor answer, risk verdict and
    orders: the whole path signal → advisor → risk → order as it was recorded."""
    repos, mode = context.repos, context.mode
    passed = {"all": None, "passed": True, "rejected": False}[status]
    rows = repos.signals.recent(
        mode, limit=limit + 1, offset=offset, symbol=symbol or None, passed=passed
    )
    page = rows[:limit]
    ids = [r["id"] for r in page]
    advisors = queries.advisor_by_signal(repos.db, mode, ids)
    risks = queries.risk_by_signal(repos.db, mode, ids)
    window_ms = 2 * context.settings.timeframe_ms + 60_000  # decision candle → order placed
    orders = queries.orders_for_decisions(repos.db, mode, list(risks.values()), window_ms)
    items = []
    for row in page:
        advisor = _advisor(advisors.get(row["id"]))
        risk = _risk(risks.get(row["id"]))
        order_rows = [order_out(o) for o in orders.get(risk["id"], [])] if risk else []
        items.append(
            {
                "id": row["id"],
                "timestamp": row["timestamp"],
                "symbol": row["symbol"],
                "timeframe": row["timeframe"],
                "side": row["side"],
                "rule": row["rule"],
                "strategy": row["strategy"] or "",
                "strength": float(row["strength"]),
                "confidence": row["confidence"],
                "price": float(row["price"]),
                "regime": row["regime"],
                "reason": row["reason"],
                "passed": bool(row["passed"]),
                "rejected_by": row["rejected_by"],
                "trace": _trace(row["trace"]),
                "indicators": {
                    str(k): _float_or_none(v) for k, v in (row["indicators"] or {}).items()
                },
                "advisor": advisor,
                "risk": risk,
                "orders": order_rows,
                "stage": _stage(row, advisor, risk, order_rows),
            }
        )
    return {
        "mode": mode.value,
        "items": items,
        "limit": limit,
        "offset": offset,
        "has_more": len(rows) > limit,
    }


def _failing_step(trace: Any, name: str | None) -> str:
    for step in _trace(trace):
        if not step["passed"] and (name is None or step["name"] == name):
            return step["reason"]
    return ""


@router.get("/signals/rejections", response_model=RejectionsResponse)
def rejections(
    since: int = time_query(0, "Count from this candle time (UTC epoch ms)."),
    limit: int = Query(20, ge=1, le=100, description="How many latest rejections to list."),
    context: WebContext = Depends(get_context),
) -> dict[str, Any]:
    """Why trades did not happen: counts per filter, advisor answer and risk reason code, and
    the latest rejections of every stage."""
    repos, mode = context.repos, context.mode
    latest: list[dict[str, Any]] = []
    for row in repos.signals.recent(mode, limit=limit, passed=False):
        reason = row["rejected_by"] or "filtered"
        latest.append(
            {
                "stage": "filter",
                "timestamp": row["timestamp"],
                "symbol": row["symbol"],
                "reason": reason,
                "message": _failing_step(row["trace"], row["rejected_by"]) or row["reason"],
            }
        )
    for row in queries.advisor_rejections(repos.db, mode, limit):
        parsed = row["parsed"] if isinstance(row["parsed"], dict) else {}
        errors = "; ".join(str(e) for e in row["errors"] or [])
        latest.append(
            {
                "stage": "advisor",
                "timestamp": row["timestamp"],
                "symbol": row["symbol"],
                "reason": "hold" if row["valid"] else (row["fallback"] or "invalid_answer"),
                "message": str(parsed.get("reasoning") or errors or ""),
            }
        )
    for row in repos.risk_decisions.recent(mode, limit=limit, approved=False):
        latest.append(
            {
                "stage": "risk",
                "timestamp": row["timestamp"],
                "symbol": row["symbol"],
                "reason": row["reason_code"],
                "message": row["message"],
            }
        )
    latest.sort(key=lambda r: r["timestamp"], reverse=True)
    return {
        "mode": mode.value,
        "since": since,
        "filter_counts": repos.signals.rejection_counts(mode, since),
        "advisor_counts": queries.advisor_rejection_counts(repos.db, mode, since),
        "risk_counts": repos.risk_decisions.rejection_counts(mode, since),
        "latest": latest[:limit],
    }


@router.get("/advisor/confidence", response_model=ConfidenceResponse)
def advisor_confidence(
    limit: int = Query(200, ge=1, le=1000, description="How many of the newest answers."),
    symbol: str | None = SymbolQuery,
    context: WebContext = Depends(get_context),
) -> dict[str, Any]:
    """The LLM's confidence on its newest answers, oldest first (for the history chart)."""
    rows = context.repos.advisor_calls.recent(context.mode, limit=limit, symbol=symbol or None)
    rows.reverse()
    points = [
        {
            "t": r["timestamp"],
            "symbol": r["symbol"],
            "action": r["action"],
            "confidence": _float_or_none(r["confidence"]),
            "valid": bool(r["valid"]),
            "fallback": r["fallback"],
        }
        for r in rows
    ]
    return {"mode": context.mode.value, "points": points}
