"""``kmg backtest`` (a typer command; :mod:`kmg_autotrader.cli` registers it).

Defaults come from the settings (EXCHANGE, SYMBOLS, TIMEFRAME, STRATEGY, PAPER_STARTING_BALANCE,
the risk settings). Bad input prints one clear line and exits 2 — never a traceback.

The backtester (pandas, the signal engine, the pipeline) is imported inside the command, so
``kmg --help`` and every other command start without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from kmg_autotrader.cli_support import EXIT_USAGE, console, fail, settings_or_exit

if TYPE_CHECKING:
    from kmg_autotrader.backtest.runner import BacktestRequest
    from kmg_autotrader.config import Settings

_ADVISOR_MODES = ("off", "replay")


def parse_day(text: str, option: str, *, end: bool = False) -> int:
    """``YYYY-MM-DD`` (an ``--end`` day is included whole) or an ISO time, as UTC epoch ms."""
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return int(((day + timedelta(days=1)) if end else day).timestamp() * 1000)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} {text!r} is not a date like 2024-01-31 (or an ISO time)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_symbols(text: str) -> list[str]:
    """``BTC/USDT,ETH/USDT`` → a list of unified symbols (upper case)."""
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols:
        fail("--symbols is empty; give e.g. BTC/USDT,ETH/USDT")
    for symbol in symbols:
        base, sep, quote = symbol.partition("/")
        if not sep or not base or not quote or "/" in quote:
            fail(f"--symbols: {symbol!r} is not a symbol like BTC/USDT")
    return symbols


def parse_risk(items: list[str], settings: Settings) -> Any:
    """``--risk key=value`` overrides over the risk settings, validated as a whole."""
    from kmg_autotrader.risk.params import RiskParams, RiskParamsError
    from kmg_autotrader.risk.units import FRACTION_FIELDS, to_fraction

    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--risk {item!r}: use KEY=VALUE, e.g. --risk max_open_positions=10")
        overrides[key.strip()] = value.strip()
    unknown = [k for k in overrides if k not in RiskParams.model_fields]
    if unknown:
        fail(f"--risk: unknown risk parameter(s) {', '.join(unknown)}")
    values: dict[str, Any] = dict(overrides)
    for key in FRACTION_FIELDS & overrides.keys():  # typed in percent: 20 = 20 %
        try:
            percent = float(overrides[key])
        except ValueError:
            continue  # validation names it
        if not 0 <= percent <= 100:
            fail(f"--risk {key}={overrides[key]}: a percentage from 0 to 100 (20 = 20 %)")
        values[key] = to_fraction(percent)
    try:
        return RiskParams.from_settings(settings, **values)
    except RiskParamsError as exc:
        fail(f"--risk: {exc}")


@contextmanager
def _progress(start_ms: int, end_ms: int) -> Iterator[Any]:
    bar = Progress(
        TextColumn("[bold]backtest[/]"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f} %"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    total = max(1, end_ms - start_ms)
    with bar:
        task = bar.add_task("replay", total=total)
        yield lambda now: bar.update(task, completed=min(total, max(0, now - start_ms)))
        bar.update(task, completed=total)


def backtest(
    strategy: str | None = typer.Option(
        None, help="Strategy name (default, sma_cross_rsi) or file/module path. [STRATEGY]"
    ),
    exchange: str | None = typer.Option(None, help="Exchange the candles come from. [EXCHANGE]"),
    symbols: str | None = typer.Option(
        None, help="Comma-separated symbols, e.g. BTC/USDT,ETH/USDT. [SYMBOLS]"
    ),
    timeframe: str | None = typer.Option(None, help="Candle timeframe, e.g. 5m. [TIMEFRAME]"),
    start: str | None = typer.Option(
        None, help="First day replayed (UTC), e.g. 2024-01-01; default: all stored history."
    ),
    end: str | None = typer.Option(
        None, help="Last day replayed (UTC, included whole), e.g. 2024-12-31; default: the end."
    ),
    advisor: str = typer.Option(
        "off",
        help="off: rules only; replay: the LLM's recorded answers (by prompt hash, no calls).",
    ),
    export: Path | None = typer.Option(
        None,
        "--export",
        help="Write trades.csv, equity.csv, metrics.json and report.html into this directory.",
    ),
    stake_amount: float | None = typer.Option(
        None,
        "--stake-amount",
        help="Fixed stake per entry in quote currency (e.g. 100); default: risk-based sizing.",
    ),
    fee_edge: bool = typer.Option(
        True,
        "--fee-edge/--no-fee-edge",
        help="Apply the risk manager's fee-edge rule (with --stake-amount it may be turned off "
        "for strategies that must run their rules exactly).",
    ),
    risk: list[str] = typer.Option(
        [],
        "--risk",
        help="Risk parameter override KEY=VALUE (repeatable); percentages in percent, "
        "e.g. max_position_percent=20.",
    ),
    balance: float | None = typer.Option(
        None, help="Starting balance in quote currency. [PAPER_STARTING_BALANCE]"
    ),
    sample: str | None = typer.Option(
        None,
        "--sample",
        help="Replay a packaged sample set instead of stored candles: btc-usdt or btc-pairs.",
    ),
    data_file: Path | None = typer.Option(
        None, "--data-file", help="Replay one candle file (CSV, parquet or feather)."
    ),
) -> None:
    """Replay candles through the same signal → advisor → risk → execution pipeline the live
    bot runs, on a simulated clock and the paper exchange (fees, slippage, minimums, cooldowns
    and kill-switches active). Orders decided on a candle fill at the next candle's open."""
    settings = settings_or_exit(console_log=False)
    if advisor not in _ADVISOR_MODES:
        fail(f"--advisor must be one of {', '.join(_ADVISOR_MODES)}, not {advisor!r}")
    if sample is not None and data_file is not None:
        fail("give --sample or --data-file, not both")
    tf = timeframe or settings.timeframe
    try:
        from kmg_autotrader.config import timeframe_to_ms

        timeframe_to_ms(tf)
    except ValueError as exc:
        fail(str(exc))
    start_ms = parse_day(start, "--start") if start else None
    end_ms = parse_day(end, "--end", end=True) if end else None
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        fail(f"--start {start} is not before --end {end}")
    wanted = parse_symbols(symbols) if symbols else None
    risk_params = parse_risk(risk, settings)
    try:
        stake = None if stake_amount is None else Decimal(str(stake_amount))
        if stake is not None and stake <= 0:
            raise InvalidOperation
    except InvalidOperation:
        fail("--stake-amount must be a positive number")
    if not fee_edge and stake is None:
        fail("--no-fee-edge needs --stake-amount")
    from kmg_autotrader.backtest.runner import BacktestError, BacktestRequest, skip_exit_scan

    skip_exit_scan()  # this process ends with the report: see skip_exit_scan
    try:
        frames = _load(settings, exchange, wanted, tf, start_ms, end_ms, sample, data_file)
        quotes = {s.partition("/")[2] for s in frames}
        if len(quotes) > 1:
            raise BacktestError(f"symbols must share one quote currency, not {sorted(quotes)}")
        request = BacktestRequest(
            strategy=strategy or settings.strategy,
            exchange=(exchange or settings.exchange).lower(),
            timeframe=tf,
            initial_balance=Decimal(str(balance or settings.paper_starting_balance)),
            quote=quotes.pop(),
            stake_amount=stake,
            fee_edge=fee_edge,
            advisor_mode="replay" if advisor == "replay" else "off",
            execution_mode=settings.execution_mode,
            risk_params=risk_params,
            signal_params=settings.signal_params,
        )
        result = _run(settings, frames, request, export is not None)
    except BacktestError as exc:
        fail(str(exc), EXIT_USAGE)
    from kmg_autotrader.backtest.summary import summary_table

    console.print(summary_table(result))
    if export is not None:
        from kmg_autotrader.backtest.export import export as write_all

        try:
            paths = write_all(result, export)
        except OSError as exc:
            fail(f"cannot write to {export}: {exc}")
        console.print(f"exported {', '.join(p.name for p in paths)} to {export}")


def _load(
    settings: Settings,
    exchange: str | None,
    symbols: list[str] | None,
    timeframe: str,
    start_ms: int | None,
    end_ms: int | None,
    sample: str | None,
    data_file: Path | None,
) -> dict[str, Any]:
    from kmg_autotrader.backtest import data
    from kmg_autotrader.backtest.runner import BacktestError

    if sample is not None:
        return data.load_sample(sample, symbols, start_ms, end_ms)
    if data_file is not None:
        if symbols is not None and len(symbols) > 1:
            raise BacktestError("--data-file holds one symbol; give at most one in --symbols")
        return data.load_file(
            data_file, symbols[0] if symbols else None, timeframe, start_ms, end_ms
        )
    return data.load_stored(
        settings.data_dir,
        (exchange or settings.exchange).lower(),
        symbols or list(settings.symbols),
        timeframe,
        start_ms,
        end_ms,
    )


def _run(
    settings: Settings, frames: dict[str, Any], request: BacktestRequest, keep_prices: bool
) -> Any:
    from kmg_autotrader.backtest.runner import BacktestError, run_backtest
    from kmg_autotrader.signals import StrategyLoadError

    start_ms = min(int(f["timestamp"].iloc[0]) for f in frames.values())
    end_ms = max(int(f["timestamp"].iloc[-1]) for f in frames.values())
    with _advisor_factory(settings, request) as factory, _progress(start_ms, end_ms) as tick:
        try:
            return asyncio.run(
                run_backtest(
                    frames,
                    request,
                    advisor_factory=factory,
                    progress=tick,
                    keep_prices=keep_prices,
                    consume=True,
                )
            )
        except (StrategyLoadError, ValueError) as exc:
            raise BacktestError(str(exc)) from None


@contextmanager
def _advisor_factory(settings: Settings, request: BacktestRequest) -> Iterator[Any]:
    """For ``--advisor replay``: the recorded answers in the database; else nothing."""
    if request.advisor_mode != "replay":
        yield None
        return
    from kmg_autotrader.backtest.advice import replay_advisor
    from kmg_autotrader.backtest.runner import BacktestError
    from kmg_autotrader.storage.database import Database, DatabaseError
    from kmg_autotrader.storage.repositories import Repositories

    try:
        database = Database(settings.database_url)
        database.upgrade()
    except DatabaseError as exc:
        raise BacktestError(f"--advisor replay: {exc}") from None
    repos = Repositories(database)
    try:
        yield lambda clock, tracks, tf: replay_advisor(settings, repos, clock, tracks, tf)
    finally:
        database.dispose()
