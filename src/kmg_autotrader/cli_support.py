"""Helpers shared by every CLI command: settings loading, logging, clean error exits.

The settings module is imported on first use: it pulls in the signal parameters and with them
pandas, which ``kmg --help`` and the option parsing never need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from kmg_autotrader.config import Settings

err_console = Console(stderr=True)
console = Console()

EXIT_USAGE = 2  # bad settings or arguments
EXIT_FAILURE = 1  # the command ran and failed (exchange unreachable, …)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one clear error line to stderr and exit with ``code`` (never a traceback)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_or_exit(*, log: bool = True, console_log: bool = True, **overrides: Any) -> Settings:
    """Load and validate the settings; on a bad value print one line per variable and exit 2."""
    from kmg_autotrader.config import ConfigError, EnvFileError, load_settings
    from kmg_autotrader.logging_setup import setup_logging

    try:
        settings = load_settings(**overrides)
    except EnvFileError as exc:  # the file itself, not a variable: one line
        fail(exc.lines[0])
    except ConfigError as exc:
        err_console.print("[bold red]error:[/] invalid settings (environment or .env):")
        for line in exc.lines:
            err_console.print(f"  - {line}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    if log:
        try:
            setup_logging(
                level=settings.log_level,
                data_dir=settings.data_dir,
                secrets=settings.secret_values(),
                console=console_log,
            )
        except OSError as exc:  # DATA_DIR passed the check but the log file cannot be made
            fail(f"cannot write the log under DATA_DIR {settings.data_dir}: {exc.strerror or exc}")
    return settings


def not_available(command: str) -> NoReturn:
    """Exit 2 for a command whose feature is not built yet (never fake a result)."""
    fail(f"`kmg {command}` is not available yet in this version.", EXIT_USAGE)
