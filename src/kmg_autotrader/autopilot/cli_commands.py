"""``kmg run`` and ``kmg demo`` (registered in :mod:`kmg_autotrader.cli`).

The bot (exchange, database, advisor, alerts, web) is imported inside the commands, so every
other ``kmg`` command and ``--help`` start without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kmg_autotrader.autopilot.demo_defaults import DEMO_SPEED, DEMO_START
from kmg_autotrader.autopilot.lifecycle import leave, run_to_end
from kmg_autotrader.cli_support import EXIT_FAILURE, EXIT_USAGE, console, fail, settings_or_exit
from kmg_autotrader.sample_data import SAMPLE_SETS

if TYPE_CHECKING:
    from kmg_autotrader.autopilot.bot import BotSummary
    from kmg_autotrader.autopilot.feeds import ReplayFeed
    from kmg_autotrader.config import Settings
    from kmg_autotrader.instance_lock import InstanceLock

STATUS_EVERY_S = 10.0
_DEFAULT_STARTS = ", ".join(f"{name} {at:,}" for name, at in DEMO_START.items())


def fail_and_leave(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """:func:`fail`, without waiting for worker threads still busy after the run."""
    try:
        fail(message, code)
    finally:
        leave(code)


def _lock_or_exit(settings: Settings, mode: str, web: bool, command: str) -> InstanceLock:
    """Take the DATA_DIR lock of ``mode``, or exit 2 with one line naming the running holder."""
    from kmg_autotrader.instance_lock import InstanceLockedError, acquire

    port = settings.web_port if web else None
    try:
        return acquire(settings.data_dir, mode, port=port, command=command)
    except InstanceLockedError as exc:
        fail(str(exc), EXIT_USAGE)
    except OSError as exc:  # DATA_DIR unwritable (the settings check usually says so first)
        fail(f"cannot take the {mode} lock in {settings.data_dir}: {exc}", EXIT_FAILURE)


class DemoStatus:
    """The demo's one-line status on the terminal: every :data:`STATUS_EVERY_S` seconds and
    at once on each entry or exit, never a flood."""

    def __init__(self, settings: Settings, sample_set: str, *, web: bool) -> None:
        from kmg_autotrader.webui.keys import TOKEN_FILE

        self.quote = next(iter(SAMPLE_SETS[sample_set])).split("/")[1]
        if not web:
            self.where = "dashboard off (--no-web)"
        else:
            token = (
                "API_TOKEN"
                if settings.api_token is not None
                else str(settings.data_dir / TOKEN_FILE)
            )
            self.where = (
                f"dashboard http://{settings.web_host}:{settings.web_port} (token: {token})"
            )
        self.last_print = 0.0
        self.last_trades = (0, 0)

    def update(self, feed: ReplayFeed, summary: BotSummary) -> None:
        """Print the line when it is due (called about twice a second)."""
        now = time.monotonic()
        trades = (summary.entries, summary.exits)
        if trades == self.last_trades and now - self.last_print < STATUS_EVERY_S:
            return
        self.last_print, self.last_trades = now, trades
        equity = (
            f"{summary.last_equity:,.2f} {self.quote}" if summary.last_equity is not None else "—"
        )
        console.print(
            f"demo: candles {summary.candles:,} ({feed.steps_done:,}/{feed.total_steps:,} steps)"
            f" · entries {summary.entries} · exits {summary.exits} · equity {equity}"
            f" · {self.where}",
            highlight=False,
            soft_wrap=True,
        )


def _print_summary(summary: BotSummary, title: str) -> None:
    table = Table(title=title)
    table.add_column("figure", style="cyan")
    table.add_column("value", justify="right")
    table.add_row("candles processed", f"{summary.candles:,}")
    table.add_row("decisions recorded", f"{summary.decisions:,}")
    table.add_row("entry candidates", f"{summary.candidates:,}")
    if summary.advisor_calls:
        table.add_row(
            "advisor reviews (vetoed)", f"{summary.advisor_calls:,} ({summary.advisor_vetoes:,})"
        )
    table.add_row("entries filled", f"{summary.entries:,}")
    table.add_row("positions closed", f"{summary.exits:,}")
    table.add_row(
        "risk rejections",
        ", ".join(f"{k} {v}" for k, v in sorted(summary.rejections.items())) or "none",
    )
    table.add_row("gaps in the data (strategy re-warmed)", str(summary.gaps))
    if summary.first_equity is not None and summary.last_equity is not None:
        table.add_row("equity", f"{summary.first_equity:.2f} → {summary.last_equity:.2f}")
        if summary.first_equity > 0:
            change = (summary.last_equity / summary.first_equity - 1) * 100
            table.add_row("return", f"{change:+.2f} %")
        else:  # a return on nothing is undefined
            table.add_row("return", "n/a")
    console.print(table)


def demo(
    sample_set: str = typer.Option(
        "btc-usdt",
        "--set",
        help=f"Packaged candle set: {', '.join(SAMPLE_SETS)} (btc-pairs: six BTC pairs, 2018).",
    ),
    speed: float = typer.Option(
        DEMO_SPEED,
        "--speed",
        min=0,
        help="Candles per second to replay (per symbol); 0 = as fast as possible, then exit.",
    ),
    web: bool = typer.Option(
        True, "--web/--no-web", help="Serve the dashboard on WEB_HOST:WEB_PORT while it runs."
    ),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="The dashboard's port. Default: WEB_PORT."
    ),
    start: int | None = typer.Option(
        None,
        "--start",
        min=0,
        help="Start the replay at this candle of the set (the candles before it warm the "
        "strategy up). Default: a point where the first trade comes within a minute "
        f"({_DEFAULT_STARTS}); 0: the set's beginning.",
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Replay only N candles of each symbol (from the start)."
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the previous demo run where it stopped (default: start fresh).",
    ),
) -> None:
    """Replay real packaged candles through the live loop: PAPER, no keys, no network.

    The demo uses its own database (DATA_DIR/demo.sqlite, fresh every run), so it never
    touches your paper account. A status line (candles, entries, exits, equity, dashboard)
    is printed every few seconds and on each trade. One demo per DATA_DIR: a second one
    exits 2 naming the first. Stop it any time with Ctrl-C.
    """
    from kmg_autotrader.advisor.errors import AdvisorUnavailableError
    from kmg_autotrader.autopilot.runner import run_demo
    from kmg_autotrader.autopilot.web import start_web

    if sample_set not in SAMPLE_SETS:
        fail(f"unknown --set {sample_set!r}; choose one of {', '.join(SAMPLE_SETS)}")
    settings = settings_or_exit() if port is None else settings_or_exit(web_port=port)
    # before anything under DATA_DIR is touched (the database, the dashboard's token)
    _lock = _lock_or_exit(settings, "demo", web, "kmg demo")
    progress = Progress(
        TextColumn("[bold]demo[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} steps"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )

    status = DemoStatus(settings, sample_set, web=web)

    def on_feed(feed: ReplayFeed) -> Callable[[], None]:
        task = progress.add_task(sample_set, total=feed.total_steps)

        def update() -> None:
            progress.update(task, completed=feed.steps_done)

        return update

    try:
        with progress:
            summary = run_to_end(
                run_demo(
                    settings,
                    sample_set=sample_set,
                    speed=speed,
                    web=start_web if web else None,
                    limit=limit,
                    on_feed=on_feed,
                    resume=resume,
                    start=start,
                    on_status=status.update,
                )
            )
    except AdvisorUnavailableError as exc:  # ADVISOR_MODE=required and no advisor: exit 2
        fail_and_leave(str(exc), EXIT_USAGE)
    except Exception as exc:  # a clear line, not a traceback (details are in the log file)
        fail_and_leave(f"demo failed: {type(exc).__name__}: {exc}")
    _print_summary(summary, f"KMG demo — {sample_set} (PAPER)")
    console.print("see the run in the dashboard: [bold]kmg web --demo[/bold]")
    leave(0)


def run(
    live: bool = typer.Option(
        False,
        "--live",
        help="Confirm LIVE trading. Also needs TRADING_MODE=live and the exchange keys.",
    ),
    web: bool = typer.Option(True, "--web/--no-web", help="Serve the dashboard beside the bot."),
) -> None:
    """Run the bot 24/7: collect data, decide on every closed candle, trade (PAPER default).

    An exchange it cannot reach at start is retried (every 2, 4, 8 ... up to 60 s; the log,
    the dashboard's health and an alert say so); after EXCHANGE_UNREACHABLE_EXIT_SECONDS
    (default 900, 0 = never) it exits 1 so a supervisor can restart it. It never trades sample
    data: that is `kmg demo`.
    """
    from kmg_autotrader.advisor.errors import AdvisorUnavailableError
    from kmg_autotrader.autopilot.connect import ExchangeUnreachableError
    from kmg_autotrader.autopilot.runner import run_live
    from kmg_autotrader.autopilot.web import start_web
    from kmg_autotrader.execution.errors import LiveTradingRefusedError

    settings = settings_or_exit()
    mode = "live" if live or settings.trading_mode.value == "live" else "paper"
    _lock = _lock_or_exit(settings, mode, web, f"kmg run ({mode.upper()})")
    starter = start_web if web else None
    try:
        summary = run_to_end(
            run_live(settings, live_flag=live, web=starter, web_while_unreachable=web)
        )
    except (LiveTradingRefusedError, AdvisorUnavailableError) as exc:
        fail_and_leave(str(exc), EXIT_USAGE)
    except ExchangeUnreachableError as exc:
        fail_and_leave(f"cannot reach the exchange: {exc}")
    except Exception as exc:
        fail_and_leave(f"the bot stopped on an error: {type(exc).__name__}: {exc}")
    _print_summary(summary, "KMG run")
    leave(0)
