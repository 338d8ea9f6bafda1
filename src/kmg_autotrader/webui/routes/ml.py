"""``GET /ml/status``: the newest model in the registry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kmg_autotrader.webui.context import WebContext, get_context
from kmg_autotrader.webui.routes.common import SECURED
from kmg_autotrader.webui.schemas import MlStatusResponse

router = APIRouter(tags=["ml"], **SECURED)


@router.get("/ml/status", response_model=MlStatusResponse)
def ml_status(context: WebContext = Depends(get_context)) -> dict[str, Any]:
    """Name, version, accuracy and training time of the newest model, or ``no_model``."""
    row = context.repos.ml_models.latest()
    if row is None:
        return {
            "status": "no_model",
            "message": "No model yet: the bot trains one from its own outcomes once enough "
            "trades are recorded.",
        }
    metrics = row["metrics"] if isinstance(row["metrics"], dict) else {}
    accuracy = metrics.get("accuracy")
    return {
        "status": "ready",
        "message": f"{row['name']} {row['version']}" + (" (active)" if row["active"] else ""),
        "name": row["name"],
        "version": row["version"],
        "trained_at": row["trained_at"],
        "accuracy": float(accuracy) if isinstance(accuracy, int | float) else None,
        "active": bool(row["active"]),
        "metrics": metrics,
    }
