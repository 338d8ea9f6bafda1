"""``GET /events/stream``: Server-Sent Events with new equity points, orders, signals, trades,
positions."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from kmg_autotrader.domain.clock import now_ms
from kmg_autotrader.webui.context import WebContext, get_context, redact
from kmg_autotrader.webui.routes.common import SECURED

router = APIRouter(tags=["live"], **SECURED)

HEARTBEAT_SECONDS = 15.0
# One event of the stream (as OpenAPI 3.2's itemSchema describes SSE): its name and JSON data.
SSE_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {
            "type": "string",
            "description": "hello, equity, orders, signals, trades, positions…",
        },
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}


def _frame(kind: str, data: dict[str, object]) -> str:
    return f"event: {kind}\ndata: {redact(json.dumps(data, default=str))}\n\n"


async def _events(request: Request, context: WebContext) -> AsyncIterator[str]:
    queue = context.bus.subscribe()
    deadline = time.monotonic() + context.stream_max_seconds
    try:
        yield "retry: 3000\n\n"
        yield _frame("hello", {"mode": context.mode.value, "time": now_ms()})
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                break
            timeout = min(HEARTBEAT_SECONDS, max(0.05, deadline - time.monotonic()))
            try:
                event = await asyncio.wait_for(queue.get(), timeout=timeout)
            except TimeoutError:
                yield ": ping\n\n"
                continue
            yield _frame(event.kind, event.data)
    finally:
        context.bus.unsubscribe(queue)


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An event stream (``hello``, ``equity``, ``orders``, ``signals``, "
            "``trades``, ``positions``, ``control``); the server closes it after a few "
            "minutes and the browser reconnects.",
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
        }
    },
)
async def stream(request: Request, context: WebContext = Depends(get_context)) -> StreamingResponse:
    """Live updates for the dashboard."""
    return StreamingResponse(
        _events(request, context),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
