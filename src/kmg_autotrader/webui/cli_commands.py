"""``kmg web``: the dashboard on its own (registered in :mod:`kmg_autotrader.cli`).

FastAPI, uvicorn and the database are imported inside the command, so ``kmg --help`` and the
other commands start without them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from kmg_autotrader.cli_support import EXIT_FAILURE, console, fail, settings_or_exit


def web(
    host: str | None = typer.Option(None, "--host", help="Bind address. Default: WEB_HOST."),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="Port. Default: WEB_PORT."
    ),
    demo: bool = typer.Option(
        False, "--demo", help="Show the last `kmg demo` run (DATA_DIR/demo.sqlite) instead."
    ),
) -> None:
    """Serve the dashboard and API alone (the bot, if running, is another process)."""
    from kmg_autotrader.storage.database import Database, DatabaseError
    from kmg_autotrader.storage.repositories import Repositories
    from kmg_autotrader.webui.keys import WebSecurityError
    from kmg_autotrader.webui.server import WebStartError, serve

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["web_host"] = host
    if port is not None:
        overrides["web_port"] = port
    settings = settings_or_exit(**overrides)
    url = settings.database_url
    if demo:
        from kmg_autotrader.autopilot.runner import DEMO_DB

        demo_file = settings.data_dir / DEMO_DB
        if not demo_file.is_file():
            fail(f"no demo database at {demo_file}: run `kmg demo` first", EXIT_FAILURE)
        url = f"sqlite:///{demo_file.resolve()}"
    database = Database(url)
    try:
        database.upgrade()
        repos = Repositories(database)
        console.print(
            f"dashboard: http://{settings.web_host}:{settings.web_port} "
            f"({settings.trading_mode.value.upper()} records)"
        )
        asyncio.run(serve(settings, repos))
    except WebSecurityError as exc:
        fail(str(exc))
    except WebStartError as exc:
        fail(str(exc), EXIT_FAILURE)
    except DatabaseError as exc:
        fail(str(exc), EXIT_FAILURE)
    except KeyboardInterrupt:
        pass
    finally:
        database.dispose()
