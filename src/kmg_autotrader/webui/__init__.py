"""The web dashboard and API: FastAPI, Jinja2 templates, Chart.js served from ``static/``.

Start it beside the bot with :func:`serve` (an asyncio task) or alone with ``kmg web``.
"""

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
