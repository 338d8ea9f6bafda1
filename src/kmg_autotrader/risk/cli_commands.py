"""``kmg resume`` (clear a tripped drawdown breaker / daily kill-switch) and the risk table of
``kmg config check`` (each limit in effect with its source); registered in cli.py.

It writes the stored risk state the running bot reads before every decision, so it works
whether or not ``kmg run`` is running. Nothing tripped is refused (exit 1, nothing changes);
so is an unconfirmed prompt. The answer is the state read back after the change.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kmg_autotrader.cli_support import EXIT_FAILURE, console, fail, settings_or_exit
from kmg_autotrader.domain import Mode

if TYPE_CHECKING:
    from kmg_autotrader.config import Settings


def _who() -> str:
    """``cli:<os user>`` (the user name is only a label: ``cli`` when it cannot be read)."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except Exception:  # no user name in this environment (getuser raises several kinds)
        return "cli"


def resume(
    mode: Mode | None = typer.Option(
        None, "--mode", help="Mode whose breaker to clear. Default: TRADING_MODE."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Clear without asking."),
) -> None:
    """Clear a tripped drawdown breaker and/or daily kill-switch (asks first).

    This does not pause or resume trading: that is the dashboard's Pause/Resume.
    """
    from kmg_autotrader.autopilot.control import TradingControl
    from kmg_autotrader.risk.clearing import (
        clear_trips,
        describe_trips,
        nothing_tripped,
        stored_manager,
    )
    from kmg_autotrader.storage.database import Database, DatabaseError
    from kmg_autotrader.storage.repositories import Repositories

    settings = settings_or_exit(console_log=False)
    mode = mode or settings.trading_mode
    name = mode.value.upper()
    database = Database(settings.database_url)
    try:
        database.upgrade()
        repos = Repositories(database)
        trips = describe_trips(stored_manager(settings, repos, mode).status())
        if not trips:
            fail(f"nothing to clear: {nothing_tripped(name)}", EXIT_FAILURE)
        for line in trips:
            console.print(f"{name}: {line}", highlight=False)
        question = (
            f"Clear it for {name}? New entries may open again on the bot's next decision "
            "(the peak / the day's start restarts at the last equity)"
        )
        if not yes and not _confirmed(question):
            fail("not confirmed: nothing was changed", EXIT_FAILURE)
        outcome = clear_trips(settings, repos, mode, _who())
        for line in outcome.lines():
            console.print(line, highlight=False)
        control = TradingControl(repos.risk_state, mode).status()
        console.print(_pause_line(control), highlight=False)
        if not outcome.ok:
            fail("the clear did not take effect (see the read-back above)", EXIT_FAILURE)
    except DatabaseError as exc:
        fail(str(exc), EXIT_FAILURE)
    finally:
        database.dispose()


def _confirmed(question: str) -> bool:
    """Ask; no answer (end of input) is a no."""
    try:
        return bool(typer.confirm(question, default=False))
    except typer.Abort:
        return False


def _pause_line(control: dict[str, object]) -> str:
    """The pause switch, which this command leaves as it was."""
    if control.get("paused"):
        return (
            f"Trading pause unchanged: trading is PAUSED (by {control.get('by') or '?'}): "
            "no new trades open until Resume on the dashboard."
        )
    return "Trading pause unchanged: trading is not paused."


def print_risk_sources(settings: Settings) -> None:
    """For ``kmg config check``: the risk limits of TRADING_MODE in effect, each with its source.

    Reads the stored versions if the database exists and is migrated; never creates nor
    migrates it (a note says what is not shown and why).
    """
    from rich.table import Table
    from sqlalchemy.engine import make_url

    from kmg_autotrader.risk.params import RiskParamsStore
    from kmg_autotrader.risk.units import value_text
    from kmg_autotrader.storage.database import Database, safe_url
    from kmg_autotrader.storage.repositories import Repositories

    url = settings.database_url
    parsed = make_url(url)
    database: Database | None = None
    repo = None
    note = ""
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        note = "no database yet, so no stored edit"
    else:
        database = Database(url)
        try:
            current, head = database.current(), database.head()
            if current != head:
                note = (
                    f"the database is at revision {current or '(none)'}, not {head}: stored "
                    "edits are not shown; run `kmg db upgrade` (the bot migrates on start)"
                )
            else:
                repo = Repositories(database).risk_params
        except Exception as exc:  # unreachable server, bad file: say so, show the rest
            note = f"cannot read {safe_url(url)} ({type(exc).__name__}): stored edits not shown"
    try:
        effective = RiskParamsStore.from_settings(repo, settings, settings.trading_mode).effective()
    except Exception as exc:
        note = f"cannot read the stored risk parameters ({type(exc).__name__})"
        effective = RiskParamsStore.from_settings(None, settings, settings.trading_mode).effective()
    finally:
        if database is not None:
            database.dispose()
    mode = effective.mode.value.upper()
    table = Table(title=f"Risk limits in effect ({mode}): stored edit of {mode} > .env > default")
    table.add_column("parameter", style="cyan")
    table.add_column("value")
    table.add_column("source")
    for value in effective.values:
        source = value.source
        if value.overrides is not None:
            source += f" (overrides .env {value.setting}={value.overrides})"
        table.add_row(value.name, value_text(value.name, value.value), source)
    console.print(table)
    if note:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
