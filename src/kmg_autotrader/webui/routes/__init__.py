"""Routes, one module per area. ``API_ROUTERS`` are the JSON API (and the OpenAPI document)."""

from kmg_autotrader.webui.routes import (
    control,
    health,
    logs,
    ml,
    pages,
    performance,
    risk,
    signals,
    stream,
    trading,
)

API_ROUTERS = (
    health.router,
    performance.router,
    trading.router,
    signals.router,
    risk.router,
    logs.router,
    ml.router,
    control.router,
    stream.router,
)

__all__ = ["API_ROUTERS", "pages"]
