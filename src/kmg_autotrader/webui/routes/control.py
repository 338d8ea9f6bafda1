"""``GET /control`` and ``POST /control/pause|resume|flatten``."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from kmg_autotrader.autopilot.control import CONTROL_KEY
from kmg_autotrader.webui.auth import Principal
from kmg_autotrader.webui.context import WebContext, get_context, maybe_await
from kmg_autotrader.webui.routes.common import BODY_RESPONSES, SECURED, UNSAFE_RESPONSES
from kmg_autotrader.webui.schemas import ControlResult, ControlState, ErrorResponse

router = APIRouter(prefix="/control", tags=["control"], **SECURED)


class FlattenRequest(BaseModel):
    """Flatten closes everything at market: the caller must say so explicitly."""

    model_config = ConfigDict(extra="forbid")

    confirm: Literal[True] = Field(description="Must be true.")


def _state(context: WebContext) -> dict[str, Any]:
    stored = context.repos.risk_state.get(context.mode, CONTROL_KEY) or {}
    paused = bool(context.controller.is_paused())
    return {
        "paused": paused,
        "by": stored.get("by"),
        "at": stored.get("at"),
        "reason": stored.get("reason") or None,
    }


def _jsonable(summary: Any) -> dict[str, Any]:
    if hasattr(summary, "lines"):  # a FlattenSummary from the execution layer
        return {"lines": list(summary.lines()), "ok": bool(getattr(summary, "ok", True))}
    return dict(summary) if isinstance(summary, dict) else {"result": str(summary)}


async def _act(action: str, request: Request, context: WebContext) -> dict[str, Any]:
    principal: Principal = request.state.principal
    method = getattr(context.controller, action)
    logger.info("{} requested by {}", action, principal.source)
    summary = _jsonable(await maybe_await(method(principal.source)))
    ok = bool(summary.get("ok", True))
    message = str(summary.get("message") or "\n".join(summary.get("lines", [])) or f"{action} done")
    paused = bool(context.controller.is_paused())
    context.bus.publish("control", {"action": action, "paused": paused, "ok": ok})
    return {
        "action": action,
        "ok": ok,
        "paused": paused,
        "message": message,
        "summary": summary,
    }


@router.get("", response_model=ControlState)
def control_state(context: WebContext = Depends(get_context)) -> dict[str, Any]:
    """Whether new trades are paused, by whom and when."""
    return _state(context)


@router.post("/pause", response_model=ControlResult, responses=UNSAFE_RESPONSES)
async def pause(request: Request, context: WebContext = Depends(get_context)) -> dict[str, Any]:
    """Stop opening new trades. Open positions keep their stops and targets."""
    return await _act("pause", request, context)


@router.post("/resume", response_model=ControlResult, responses=UNSAFE_RESPONSES)
async def resume(request: Request, context: WebContext = Depends(get_context)) -> dict[str, Any]:
    """Open new trades again."""
    return await _act("resume", request, context)


@router.post(
    "/flatten",
    response_model=ControlResult,
    responses={
        **BODY_RESPONSES,
        422: {"model": ErrorResponse, "description": "The body did not confirm."},
    },
)
async def flatten(
    body: FlattenRequest, request: Request, context: WebContext = Depends(get_context)
) -> dict[str, Any]:
    """Cancel every open order and close every position of the current mode at market."""
    return await _act("flatten", request, context)
