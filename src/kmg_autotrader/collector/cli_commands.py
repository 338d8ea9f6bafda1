"""``kmg download`` and ``kmg data list|import`` (registered in :mod:`kmg_autotrader.cli`).

Defaults come from the settings (DATA_DIR, EXCHANGE, SYMBOLS, TIMEFRAME); options override
them. Bad input prints one clear line and exits 2; an unreachable exchange exits 1.

The exchange adapter (ccxt) and the candle store (pandas) are imported inside the commands, so
``kmg --help`` and the other commands start without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from kmg_autotrader.cli_support import EXIT_FAILURE, EXIT_USAGE, console, fail, settings_or_exit

if TYPE_CHECKING:
    from kmg_autotrader.collector.history import DownloadProgress, DownloadResult
    from kmg_autotrader.config import Settings
    from kmg_autotrader.exchange import ExchangeAdapter

DAY_MS = 86_400_000

# Builds the adapter for `kmg download`; tests replace it to reach a local fake exchange.
AdapterFactory = Callable[["Settings"], "ExchangeAdapter"]


def _default_adapter(settings: Settings) -> ExchangeAdapter:
    from kmg_autotrader.exchange import ExchangeAdapter

    return ExchangeAdapter.from_settings(settings)


adapter_factory: AdapterFactory = _default_adapter


def _overrides(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _parse_since(value: str) -> int:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--since {value!r} is not a date like 2024-01-31 or 2024-01-31T12:00")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def download(
    exchange: str | None = typer.Option(
        None, "--exchange", "-e", help="ccxt exchange id (binance, kraken, …). Default: EXCHANGE."
    ),
    symbols: str | None = typer.Option(
        None,
        "--symbols",
        "-s",
        help="Comma-separated ccxt unified symbols, e.g. BTC/USDT,ETH/USDT. Default: SYMBOLS.",
    ),
    timeframe: str | None = typer.Option(
        None, "--timeframe", "-t", help="Candle timeframe (1m, 5m, 1h, 1d…). Default: TIMEFRAME."
    ),
    days: int = typer.Option(
        365, "--days", "-d", min=1, max=3650, help="How many days back from now to cover."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Start date (UTC, ISO like 2024-01-01); overrides --days."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Where the candle store lives. Default: DATA_DIR."
    ),
) -> None:
    """Download closed candles into the parquet store (resumes; refills gaps; no keys needed).

    Kraken's OHLC endpoint only serves the last 720 candles, so older Kraken history is built
    from public trades; the progress bar shows which path each symbol takes.
    """
    from kmg_autotrader.exchange import (
        ExchangeAdapterError,
        TransientExchangeError,
        UnknownSymbolError,
    )
    from kmg_autotrader.storage.candle_store import (
        CandleStoreError,
        CorruptCandleFileError,
        fmt_ms,
    )

    settings = settings_or_exit(
        **_overrides(exchange=exchange, symbols=symbols, timeframe=timeframe, data_dir=data_dir)
    )
    now = int(datetime.now(tz=UTC).timestamp() * 1000)
    start = _parse_since(since) if since else now - days * DAY_MS
    if start >= now:
        fail("--since is in the future")
    try:
        results = asyncio.run(_download(settings, start))
    except UnknownSymbolError as exc:
        fail(str(exc), EXIT_USAGE)
    except TransientExchangeError as exc:
        fail(f"exchange {settings.exchange} unreachable or refusing requests: {exc}", EXIT_FAILURE)
    except ExchangeAdapterError as exc:
        fail(f"exchange {settings.exchange}: {exc}", EXIT_FAILURE)
    except CorruptCandleFileError as exc:
        fail(str(exc), EXIT_FAILURE)
    except CandleStoreError as exc:
        fail(f"the exchange sent invalid candles: {exc}", EXIT_FAILURE)
    for result in results:
        span = (
            f"{fmt_ms(result.first)} → {fmt_ms(result.last)}"
            if result.first and result.last
            else "-"
        )
        gaps = sum(g.missing for g in result.gaps_remaining)
        note = f", {gaps} candle(s) the exchange does not have" if gaps else ""
        console.print(
            f"{result.symbol} {result.timeframe} via {result.path.value}: "
            f"+{result.added} candles, stored {span}{note}"
        )


async def _download(settings: Settings, start: int) -> list[DownloadResult]:
    from kmg_autotrader.collector.history import HistoryDownloader
    from kmg_autotrader.storage.candle_store import CandleStore

    adapter = adapter_factory(settings)
    store = CandleStore(settings.data_dir)
    results: list[DownloadResult] = []
    try:
        await adapter.load_markets()
        adapter.require_symbols(settings.symbols)
        with Progress(
            TextColumn("[bold]{task.fields[symbol]}[/] {task.fields[path]}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[candles]} candles"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as progress:
            tasks: dict[str, TaskID] = {}

            def on_progress(p: DownloadProgress) -> None:
                if p.symbol not in tasks:
                    tasks[p.symbol] = progress.add_task(
                        p.symbol, total=1.0, symbol=p.symbol, path="", candles=0
                    )
                label = f"via {p.path.value}" + (" (refilling gaps)" if p.phase == "refill" else "")
                progress.update(
                    tasks[p.symbol], completed=p.fraction, path=label, candles=p.candles
                )

            downloader = HistoryDownloader(adapter, store, on_progress=on_progress)
            for symbol in settings.symbols:
                results.append(await downloader.download(symbol, settings.timeframe, start))
    finally:
        await adapter.close()
    return results


data_app = typer.Typer(
    help="Stored candles: list what is there, import files you already have.",
    no_args_is_help=True,
)


@data_app.command("list")
def data_list(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Where the candle store lives. Default: DATA_DIR."
    ),
) -> None:
    """Show every stored series: exchange, symbol, timeframe, first, last, count, gaps."""
    from kmg_autotrader.storage.candle_store import CandleStore, CorruptCandleFileError, fmt_ms

    settings = settings_or_exit(**_overrides(data_dir=data_dir))
    store = CandleStore(settings.data_dir)
    table = Table(title=f"Candles in {store.root}")
    for name in ("exchange", "symbol", "timeframe", "first (UTC)", "last (UTC)", "count", "gaps"):
        table.add_column(name, justify="right" if name in ("count", "gaps") else "left")
    corrupt: list[str] = []
    for path in store.iter_paths():
        try:
            info = store.info(path)
        except CorruptCandleFileError as exc:
            corrupt.append(str(exc))
            table.add_row("[red]?[/]", str(path), "", "", "", "", "[red]corrupt[/]")
            continue
        gaps = (
            f"{len(info.gaps)} ({sum(g.missing for g in info.gaps)} missing)" if info.gaps else "0"
        )
        table.add_row(
            info.exchange,
            info.symbol,
            info.timeframe,
            fmt_ms(info.first) if info.first is not None else "-",
            fmt_ms(info.last) if info.last is not None else "-",
            str(info.count),
            gaps,
        )
    if table.row_count == 0:
        console.print(f"no candles stored under {store.root} (try `kmg download`)")
        return
    console.print(table)
    if corrupt:
        fail(corrupt[0], EXIT_FAILURE)


@data_app.command("import")
def data_import(
    file: Path = typer.Argument(
        ...,
        help="CSV (timestamp ms or ISO, open, high, low, close, volume), freqtrade .json/"
        ".feather, or a Kraken OHLCVT / trades CSV.",
    ),
    exchange: str | None = typer.Option(
        None,
        "--exchange",
        "-e",
        help="Exchange the candles are from. Default: from the file's folder, else EXCHANGE.",
    ),
    symbol: str | None = typer.Option(
        None,
        "--symbol",
        "-s",
        help="Unified symbol, e.g. BTC/USDT. Default: from a freqtrade/Kraken file name.",
    ),
    timeframe: str | None = typer.Option(
        None,
        "--timeframe",
        "-t",
        help="Candle timeframe. Default: from the file name, else TIMEFRAME.",
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Where the candle store lives. Default: DATA_DIR."
    ),
) -> None:
    """Validate a candle file and merge it into the store (all or nothing)."""
    from kmg_autotrader.collector.importer import ImportFormatError, read_candle_file
    from kmg_autotrader.storage.candle_store import (
        CandleStore,
        CorruptCandleFileError,
        InvalidCandlesError,
        fmt_ms,
    )

    settings = settings_or_exit(
        **_overrides(exchange=exchange, timeframe=timeframe, data_dir=data_dir)
    )
    try:
        imported = read_candle_file(file, exchange=exchange, symbol=symbol, timeframe=timeframe)
    except (ImportFormatError, InvalidCandlesError) as exc:
        fail(f"{exc} — nothing was imported")
    except ValueError as exc:  # e.g. an unknown --timeframe
        fail(str(exc))
    if imported.symbol is None:
        fail(f"cannot tell the symbol from the name of {file}; pass --symbol BTC/USDT")
    ex = imported.exchange or settings.exchange
    tf = imported.timeframe or settings.timeframe
    if imported.timeframe is None:
        console.print(f"timeframe not given: using TIMEFRAME={tf}")
        try:
            read_candle_file(file, exchange=ex, symbol=imported.symbol, timeframe=tf)
        except (ImportFormatError, InvalidCandlesError) as exc:
            fail(f"{exc} — nothing was imported")
    store = CandleStore(settings.data_dir)
    try:
        added = store.append(ex, imported.symbol, tf, imported.frame, source=str(file))
    except CorruptCandleFileError as exc:
        fail(str(exc), EXIT_FAILURE)
    except InvalidCandlesError as exc:
        fail(f"{exc} — nothing was imported")
    frame = imported.frame
    first = fmt_ms(int(frame["timestamp"].to_numpy()[0])) if len(frame) else "-"
    last = fmt_ms(int(frame["timestamp"].to_numpy()[-1])) if len(frame) else "-"
    console.print(
        f"imported {len(frame)} {imported.kind} candles of {imported.symbol} {tf} on {ex} "
        f"({first} → {last}); {added} new, stored in {store.path_for(ex, imported.symbol, tf)}"
    )
