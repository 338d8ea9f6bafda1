"""``GET /positions`` and ``GET /trades``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends

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
from kmg_autotrader.webui.schemas import PositionsResponse, TradesResponse

router = APIRouter(tags=["trading"], **SECURED)


@router.get("/positions", response_model=PositionsResponse)
def positions(context: WebContext = Depends(get_context)) -> dict[str, Any]:
    """Open positions (with their mental stop and target) and balances."""
    repos, mode = context.repos, context.mode
    items = [
        {
            "id": p.id or 0,
            "symbol": p.symbol,
            "amount": num0(p.amount),
            "entry_price": num0(p.entry_price),
            "cost": num0(p.amount * p.entry_price),
            "opened_at": p.opened_at,
            "stop_loss": num(p.stop_loss),
            "take_profit": num(p.take_profit),
            "trailing_stop_pct": num(p.trailing_stop_pct),
            "highest_price": num(p.highest_price),
            "fees_paid": num0(p.fees_paid),
        }
        for p in repos.positions.open_positions(mode)
    ]
    balances = [
        {
            "currency": b.currency,
            "free": num0(b.free),
            "used": num0(b.used),
            "total": num0(b.total),
        }
        for b in repos.balances.all(mode)
    ]
    return {"mode": mode.value, "positions": items, "balances": balances}


@router.get("/trades", response_model=TradesResponse)
def trades(
    limit: int = LimitQuery,
    offset: int = OffsetQuery,
    since: int = time_query(0, "Closed at or after this time (UTC epoch ms)."),
    context: WebContext = Depends(get_context),
) -> dict[str, Any]:
    """Closed trades (round trips), newest first."""
    rows = context.repos.positions.closed_positions(
        context.mode, limit=limit + 1, offset=offset, since=since
    )
    page = rows[:limit]
    # a closed position keeps amount 0: its size is what its buy orders filled
    filled = queries.entry_amounts(
        context.repos.db, context.mode, [p.id for p in page if p.id and not p.amount]
    )
    items = []
    for p in page:
        amount = p.amount or filled.get(p.id or 0, Decimal(0))
        cost = amount * p.entry_price
        items.append(
            {
                "id": p.id or 0,
                "symbol": p.symbol,
                "amount": num0(amount),
                "entry_price": num0(p.entry_price),
                "exit_price": num(p.exit_price),
                "opened_at": p.opened_at,
                "closed_at": p.closed_at or 0,
                "realized_pnl": num0(p.realized_pnl),
                "return_pct": float(p.realized_pnl / cost * 100) if cost else None,
                "fees_paid": num0(p.fees_paid),
                "exit_reason": p.exit_reason,
            }
        )
    return {
        "mode": context.mode.value,
        "items": items,
        "limit": limit,
        "offset": offset,
        "has_more": len(rows) > limit,
    }
