"""The ``kmg`` command line (typer + rich).

Every command loads and validates the settings first; a bad setting prints one line per bad
variable and exits 2. Commands whose feature is not built yet say so and exit 2.
"""

from __future__ import annotations

import typer
from rich.table import Table

from kmg_autotrader import __version__
from kmg_autotrader.autopilot import cli_commands as autopilot_cli
from kmg_autotrader.backtest import cli_commands as backtest_cli
from kmg_autotrader.cli_support import (
    EXIT_FAILURE,
    console,
    fail,
    not_available,
    settings_or_exit,
)
from kmg_autotrader.collector import cli_commands as collector_cli
from kmg_autotrader.execution import cli_commands as execution_cli
from kmg_autotrader.fs import restrict_umask
from kmg_autotrader.risk import cli_commands as risk_cli
from kmg_autotrader.venue import cli as venue_cli
from kmg_autotrader.webui import cli_commands as webui_cli

app = typer.Typer(
    name="kmg",
    help=(
        "KMG Autotrader: an autonomous spot-crypto trading bot. PAPER trading is the default; "
        "LIVE needs exchange keys, TRADING_MODE=live and the --live flag together.\n\n"
        "Settings come from the environment and .env (see .env.example); "
        "`kmg config check` shows the effective values."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

db_app = typer.Typer(help="Database schema: migrate and inspect.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the settings.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(collector_cli.data_app, name="data")
app.command("download")(collector_cli.download)
app.add_typer(execution_cli.paper_app, name="paper")
app.command("flatten")(execution_cli.flatten)
app.command("resume")(risk_cli.resume)
app.command("run")(autopilot_cli.run)
app.command("demo")(autopilot_cli.demo)
app.command("backtest")(backtest_cli.backtest)
app.command("web")(webui_cli.web)
app.command("venue")(venue_cli.venue)


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"kmg-autotrader {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """KMG Autotrader command line."""


# ---- config ---------------------------------------------------------------------------------


@config_app.command("check")
def config_check() -> None:
    """Validate the settings, print them with secrets masked, and say what LIVE would need."""
    settings = settings_or_exit(log=False)
    table = Table(title="Effective settings", show_lines=False)
    table.add_column("setting", style="cyan")
    table.add_column("value")
    for name, value in settings.masked().items():
        table.add_row(name, value)
    console.print(table)
    defaults = type(settings.signal_params)()
    changed = {
        f"SIGNAL_{name.upper()}": value
        for name, value in settings.signal_params.model_dump().items()
        if getattr(defaults, name) != value
    }
    console.print(f"signal parameters: {changed or 'defaults'} (see SIGNAL_* in .env.example)")
    risk_cli.print_risk_sources(settings)
    console.print(f"database: {'PostgreSQL' if settings.postgres_url else 'SQLite'}")
    console.print(f"trading mode: [bold]{settings.trading_mode.value.upper()}[/]")
    missing = settings.live_requirements_missing()
    console.print("to trade LIVE you would still need:")
    for line in missing:
        console.print(f"  - {line}")
    if not settings.web_is_loopback and settings.api_token is None:
        console.print(
            "[yellow]warning:[/] WEB_HOST is not loopback and API_TOKEN is unset: "
            "the web API will refuse to start"
        )


# ---- db -------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to the configured database."""
    from kmg_autotrader.storage.database import Database, DatabaseError, safe_url

    settings = settings_or_exit()
    database = Database(settings.database_url)
    try:
        database.upgrade()
        console.print(f"database {safe_url(settings.database_url)} is at {database.current()}")
    except DatabaseError as exc:
        fail(str(exc), EXIT_FAILURE)
    finally:
        database.dispose()


@db_app.command("current")
def db_current() -> None:
    """Print the revision the database is at and the newest one this version ships."""
    from sqlalchemy.exc import SQLAlchemyError

    from kmg_autotrader.storage.database import Database, safe_url

    settings = settings_or_exit()
    database = Database(settings.database_url)
    try:
        current = database.current()
    except SQLAlchemyError as exc:
        fail(f"cannot read {safe_url(settings.database_url)}: {type(exc).__name__}", EXIT_FAILURE)
    finally:
        database.dispose()
    head = database.head()
    console.print(f"database: {safe_url(settings.database_url)}")
    console.print(f"current:  {current or '(empty: never migrated)'}")
    console.print(f"head:     {head}")
    if current != head:
        console.print("run `kmg db upgrade` (the bot also migrates on start)")


# ---- commands not built yet -----------------------------------------------------------------


@app.command("train")
def train() -> None:
    """(not available yet) Train the model on the bot's own signals and outcomes."""
    settings_or_exit()
    not_available("train")


@app.command("chat")
def chat() -> None:
    """(not available yet) Talk to the assistant about the bot's records."""
    settings_or_exit()
    not_available("chat")


def main() -> None:
    """Console-script entry point."""
    import typer.main

    from kmg_autotrader.cli_help import polish

    restrict_umask()  # every file the bot creates is 0600, every directory 0700
    polish(typer.main.get_command(app))(prog_name="kmg")


if __name__ == "__main__":
    main()
