"""``GET /control`` and ``POST /control/pause|resume|flatten|clear-breaker``.

Two different switches live here, and every answer says which one moved: *pause/resume*
stops or restarts new trades by hand; *clear-breaker* clears a tripped drawdown breaker or
daily kill-switch of the risk manager (the same as ``kmg resume``). Answers are built from the
state read back after the action, so they never claim what did not happen.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from loguru import logger
from pydantic import Field, field_validator

from kmg_autotrader.autopilot.control import CONTROL_KEY
from kmg_autotrader.risk.clearing import (
    NAMES,
    clear_trips,
    describe_trips,
    nothing_tripped,
    stored_manager,
    tripped,
)
from kmg_autotrader.webui.auth import Principal
from kmg_autotrader.webui.context import WebContext, get_context, maybe_await
from kmg_autotrader.webui.routes.common import BODY_RESPONSES, SECURED, UNSAFE_RESPONSES
from kmg_autotrader.webui.schemas import ApiInput, ControlResult, ControlState, ErrorResponse

router = APIRouter(prefix="/control", tags=["control"], **SECURED)


def _must_be_true(value: object) -> object:
    # Literal[True] alone takes 1 (1 == True in Python); a confirmation must be the JSON true
    if value is not True:
        raise ValueError("must be true")
    return value


class FlattenRequest(ApiInput):
    """Flatten closes everything at market: the caller must say so explicitly."""

    confirm: Literal[True] = Field(description="Must be true.")

    _confirmed = field_validator("confirm", mode="before")(_must_be_true)


class ClearRequest(ApiInput):
    """Clearing a breaker lets new entries open again: the caller must say so explicitly."""

    confirm: Literal[True] = Field(description="Must be true.")

    _confirmed = field_validator("confirm", mode="before")(_must_be_true)


def _risk_status(context: WebContext) -> dict[str, Any]:
    """The risk manager's stored status of this mode (as the bot reads it)."""
    return stored_manager(context.settings, context.repos, context.mode).status()


def _trip(part: dict[str, Any]) -> dict[str, Any]:
    keys = ("tripped", "tripped_at", "reason", "cleared_at", "cleared_by")
    return {key: part.get(key) or None for key in keys} | {"tripped": bool(part.get("tripped"))}


def _state(context: WebContext) -> dict[str, Any]:
    stored = context.repos.risk_state.get(context.mode, CONTROL_KEY) or {}
    paused = bool(context.controller.is_paused())
    risk = _risk_status(context)
    return {
        "paused": paused,
        "by": stored.get("by"),
        "at": stored.get("at"),
        "reason": stored.get("reason") or None,
        "breaker": _trip(risk.get("breaker") or {}),
        "kill_switch": _trip(risk.get("kill_switch") or {}),
    }


def _pause_sentence(paused: bool) -> str:
    if paused:
        return "Trading stays paused: press Resume to open new trades."
    return "Trading is not paused."


def _checked_message(action: str, paused: bool, context: WebContext) -> tuple[bool, str] | None:
    """For pause/resume: whether the read-back pause state matches, and what it means (None:
    the controller's own answer stands)."""
    if action == "pause":
        return None if paused else (False, "Pause did not take effect: trading is not paused.")
    if action != "resume":
        return None
    if paused:
        return False, "Resume did not take effect: trading is still paused."
    blocked = describe_trips(_risk_status(context))
    if blocked:
        return True, (
            "Trading resumed (no longer paused), but new entries stay blocked: "
            + "; ".join(blocked)
            + ". Clearing it is a separate action: Clear breaker… here, or `kmg resume`."
        )
    return True, "Trading resumed (no longer paused): new entries may open."


#: the actions recorded as events here (a flatten records its own, with what it closed)
AUDITED = {"pause": "paused", "resume": "resumed"}


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
    checked = _checked_message(action, paused, context)
    if checked is not None:
        ok, message = checked
    if action in AUDITED:
        # the Logs page's audit line, whichever controller acted (the bot's records nothing)
        context.repos.events.add(
            context.mode,
            AUDITED[action],
            message,
            level="info" if ok else "warning",
            source=principal.source,
            details={"paused": paused, "ok": ok},
        )
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
    """Whether new trades are paused, by whom and when; the breaker and kill-switch state."""
    return _state(context)


@router.post("/pause", response_model=ControlResult, responses=UNSAFE_RESPONSES)
async def pause(request: Request, context: WebContext = Depends(get_context)) -> dict[str, Any]:
    """Stop opening new trades. Open positions keep their stops and targets."""
    return await _act("pause", request, context)


@router.post("/resume", response_model=ControlResult, responses=UNSAFE_RESPONSES)
async def resume(request: Request, context: WebContext = Depends(get_context)) -> dict[str, Any]:
    """Un-pause: open new trades again. A tripped breaker stays tripped (see clear-breaker)."""
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


@router.post(
    "/clear-breaker",
    response_model=ControlResult,
    responses={
        **BODY_RESPONSES,
        409: {"model": ErrorResponse, "description": "Nothing is tripped; nothing changed."},
        422: {"model": ErrorResponse, "description": "The body did not confirm."},
    },
)
def clear_breaker(
    body: ClearRequest, request: Request, context: WebContext = Depends(get_context)
) -> dict[str, Any]:
    """Clear the tripped drawdown breaker and daily kill-switch of the current mode (as
    ``kmg resume``). Stored with who and when; the pause state is not touched."""
    principal: Principal = request.state.principal
    logger.info("clear breaker requested by {}", principal.source)
    outcome = clear_trips(context.settings, context.repos, context.mode, principal.source)
    if not outcome.cleared:
        raise HTTPException(409, f"Nothing to clear: {nothing_tripped(context.mode.value.upper())}")
    paused = bool(context.controller.is_paused())
    message = " ".join([*outcome.lines(), _pause_sentence(paused)])
    context.bus.publish("control", {"action": "clear_breaker", "paused": paused, "ok": outcome.ok})
    status = outcome.status
    return {
        "action": "clear_breaker",
        "ok": outcome.ok,
        "paused": paused,
        "message": message,
        "summary": {
            "cleared": [NAMES[name] for name in outcome.cleared],
            "still_tripped": [NAMES[name] for name in tripped(status)],
            "breaker": _trip(status.get("breaker") or {}),
            "kill_switch": _trip(status.get("kill_switch") or {}),
        },
    }
