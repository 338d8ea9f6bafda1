"""``GET /logs``: advisor calls, orders, events (errors among them) and alerts in one list."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from kmg_autotrader.webui import queries
from kmg_autotrader.webui.context import WebContext, get_context
from kmg_autotrader.webui.routes.common import SECURED, LimitQuery, OffsetQuery, num, num0
from kmg_autotrader.webui.schemas import LogsResponse

router = APIRouter(tags=["logs"], **SECURED)

TEXT_LIMIT = 4000  # prompts and raw answers can be long; the page shows the start


def _cut(text: Any) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + " …"


def _advisor(row: dict[str, Any]) -> dict[str, Any]:
    parsed = row["parsed"] if isinstance(row["parsed"], dict) else {}
    errors = [str(e) for e in row["errors"] or []]
    verdict = row["action"] or row["fallback"] or "invalid answer"
    confidence = f" ({row['confidence']:.2f})" if row["confidence"] is not None else ""
    return {
        "id": f"advisor:{row['id']}",
        "kind": "advisor",
        "time": row["created_at"],
        "level": "info" if row["valid"] else "warning",
        "symbol": row["symbol"],
        "title": f"advisor: {verdict}{confidence}",
        "message": str(parsed.get("reasoning") or "; ".join(errors) or ""),
        "details": {
            "model": row["model"],
            "prompt_version": row["prompt_version"],
            "valid": row["valid"],
            "repaired": row["repaired"],
            "action": row["action"],
            "confidence": row["confidence"],
            "fallback": row["fallback"],
            "errors": errors,
            "signal_id": row["signal_id"],
            "latency_ms": row["latency_ms"],
            "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": row["completion_tokens"],
            "cost_usd": row["cost_usd"],
            "parsed": parsed,
            "raw_answer": _cut(row["raw_answer"]),
            "prompt": _cut(row["prompt"]),
        },
    }


def _order(order: Any) -> dict[str, Any]:
    failed = order.status.value in {"rejected", "lost", "unresolved"} or order.error
    price = order.average_price or order.price
    return {
        "id": f"order:{order.client_order_id}",
        "kind": "order",
        "time": order.created_at,
        "level": "error" if failed else "info",
        "symbol": order.symbol,
        "title": f"{order.side.value} {order.type.value} ({order.purpose}): {order.status.value}",
        "message": order.error
        or f"filled {num0(order.filled):g} of {num0(order.amount):g}"
        + (f" at {num0(price):g}" if price is not None else ""),
        "details": {
            "client_order_id": order.client_order_id,
            "exchange_order_id": order.exchange_order_id,
            "amount": num0(order.amount),
            "filled": num0(order.filled),
            "price": num(order.price),
            "average_price": num(order.average_price),
            "fee": num0(order.fee),
            "fee_currency": order.fee_currency,
            "updated_at": order.updated_at,
        },
    }


def _event(row: dict[str, Any]) -> dict[str, Any]:
    details = row["details"] if isinstance(row["details"], dict) else {}
    symbol = details.get("symbol")  # events about one market say which in their details
    return {
        "id": f"event:{row['id']}",
        "kind": "event",
        "time": row["created_at"],
        "level": row["level"],
        "symbol": symbol if isinstance(symbol, str) and symbol else None,
        "title": row["kind"] + (f" ({row['source']})" if row["source"] else ""),
        "message": row["message"],
        "details": details,
    }


def _alert(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"alert:{row['id']}",
        "kind": "alert",
        "time": row["created_at"],
        "level": "error" if row["status"] == "failed" else "info",
        "symbol": None,
        "title": f"alert {row['event']}: {row['status']}",
        "message": row["title"] + (f" — {row['body']}" if row["body"] else ""),
        "details": {"event": row["event"], "error": row["error"], "sent_at": row["sent_at"]},
    }


@router.get("/logs", response_model=LogsResponse)
def logs(
    kind: Literal["all", "advisor", "order", "event", "alert"] = Query(
        "all", description="One source, or all of them merged by time."
    ),
    level: Literal["debug", "info", "warning", "error", "critical"] | None = Query(
        None, description="Only events of this level (kind=event; with kind=all: events only)."
    ),
    symbol: str | None = Query(
        None, max_length=32, description="Only advisor calls and orders of this symbol."
    ),
    limit: int = LimitQuery,
    offset: int = OffsetQuery,
    context: WebContext = Depends(get_context),
) -> dict[str, Any]:
    """The audit trail, newest first. ``kind=all`` merges every source by time; every
    ``offset`` up to the documented bound works for one source and for the merged list."""
    repos, mode = context.repos, context.mode
    symbol = symbol or None
    if level is not None and kind in {"all", "event"}:
        sources = ["event"]
    elif level is not None:
        sources = []
    elif symbol is not None:
        sources = [k for k in ("advisor", "order") if kind in {"all", k}]
    else:
        sources = ["advisor", "order", "event", "alert"] if kind == "all" else [kind]
    # each source's page starts where the merged page does: the database counts how many of
    # its rows come first, so a deep page never loads the rows before it
    if len(sources) == 1:
        skips = {sources[0]: offset}
    else:
        skips = queries.log_skips(repos.db, mode, sources, offset, symbol=symbol, level=level)
    fetch = limit + 1
    items: list[dict[str, Any]] = []
    if "advisor" in sources:
        rows = repos.advisor_calls.recent(mode, limit=fetch, offset=skips["advisor"], symbol=symbol)
        items += [_advisor(r) for r in rows]
    if "order" in sources:
        orders = repos.orders.recent(mode, limit=fetch, offset=skips["order"], symbol=symbol)
        items += [_order(o) for o in orders]
    if "event" in sources:
        events = repos.events.recent(mode, limit=fetch, offset=skips["event"], level=level)
        items += [_event(r) for r in events]
    if "alert" in sources:
        items += [_alert(r) for r in repos.alerts.recent(mode, limit=fetch, offset=skips["alert"])]
    items.sort(key=lambda item: item["time"], reverse=True)  # stable: ties keep source order
    return {
        "mode": mode.value,
        "items": items[:limit],
        "limit": limit,
        "offset": offset,
        "has_more": len(items) > limit,
    }
