"""The web dashboard and API: FastAPI, Jinja2 templates, Chart.js served from ``static/``.

Start it beside the bot with :func:`serve` (an asyncio task) or alone with ``kmg web``.

Names load on first use (PEP 562): importing a submodule such as ``cli_commands`` does not load
FastAPI, uvicorn or the database.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kmg_autotrader.webui.app import create_app
    from kmg_autotrader.webui.control import BotController, DatabaseController
    from kmg_autotrader.webui.events import EventBus
    from kmg_autotrader.webui.health import DatabaseHealth, HealthProvider
    from kmg_autotrader.webui.keys import WebCredentials, WebSecurityError, prepare_credentials
    from kmg_autotrader.webui.risk_store import RiskStore
    from kmg_autotrader.webui.server import BackgroundServer, WebStartError, build_server, serve

__all__ = [
    "BackgroundServer",
    "BotController",
    "DatabaseController",
    "DatabaseHealth",
    "EventBus",
    "HealthProvider",
    "RiskStore",
    "WebCredentials",
    "WebSecurityError",
    "WebStartError",
    "build_server",
    "create_app",
    "prepare_credentials",
    "serve",
]

#: public name → submodule that defines it
_MODULE_OF = {
    "create_app": "app",
    "BotController": "control",
    "DatabaseController": "control",
    "EventBus": "events",
    "DatabaseHealth": "health",
    "HealthProvider": "health",
    "WebCredentials": "keys",
    "WebSecurityError": "keys",
    "prepare_credentials": "keys",
    "RiskStore": "risk_store",
    "BackgroundServer": "server",
    "WebStartError": "server",
    "build_server": "server",
    "serve": "server",
}


def __getattr__(name: str) -> Any:
    """Load an exported name from its submodule on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Module attributes, including the lazily loaded ones."""
    return sorted(set(globals()) | set(__all__))
