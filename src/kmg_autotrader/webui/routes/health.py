"""``GET /health``: public liveness; details only for an authenticated caller."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from loguru import logger

from kmg_autotrader import __version__
from kmg_autotrader.domain.clock import now_ms
from kmg_autotrader.webui.auth import Principal, optional_auth
from kmg_autotrader.webui.context import WebContext, get_context
from kmg_autotrader.webui.routes.common import THROTTLED
from kmg_autotrader.webui.schemas import HealthResponse

router = APIRouter(tags=["health"])

_PUBLIC = ("status", "mode", "time", "version")


@router.get(
    "/health",
    response_model=HealthResponse,
    response_model_exclude_none=True,
    responses=THROTTLED,
    # public: no credentials needed (`{}`); a token adds the details
    openapi_extra={"security": [{}, {"bearer": []}]},
)
def health(
    context: WebContext = Depends(get_context),
    principal: Principal | None = Depends(optional_auth),
) -> dict[str, Any]:
    """Status (``ok``/``degraded``/``unknown``), mode and version; with authentication also the
    feed, advisor and breaker state, pause state and the last error."""
    try:
        data = dict(context.health())
    except Exception as exc:  # health must answer even when its source is broken
        logger.warning("health provider failed: {}: {}", type(exc).__name__, exc)
        data = {"status": "degraded", "last_error": "health provider failed"}
    status = data.get("status")
    data["status"] = status if status in {"ok", "degraded", "unknown"} else "degraded"
    data["mode"] = context.mode.value
    data["time"] = now_ms()
    data.setdefault("version", __version__)
    if principal is None:
        return {key: data[key] for key in _PUBLIC}
    if "paused" not in data:
        try:
            data["paused"] = bool(context.controller.is_paused())
        except Exception:  # a bot mid-restart: leave it unknown
            data["paused"] = None
    fields = HealthResponse.model_fields
    return {key: value for key, value in data.items() if key in fields}
