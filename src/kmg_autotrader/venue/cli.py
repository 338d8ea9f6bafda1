"""``kmg venue``: start a local exchange on 127.0.0.1 that real ccxt classes trade against.

The heavy parts (pandas, aiohttp, the dialects) are imported when the command runs, so
``kmg --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import signal
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kmg_autotrader.cli_support import EXIT_FAILURE, console, fail, settings_or_exit

if TYPE_CHECKING:
    import pandas as pd

    from kmg_autotrader.venue.server import Venue


def load_data(data: str, symbol: str | None) -> dict[str, pd.DataFrame]:
    """A packaged sample set by name, or one CSV/parquet file of candles (``symbol`` names it)."""
    from kmg_autotrader.sample_data import SAMPLE_SETS, load_sample_set

    if data in SAMPLE_SETS:
        return load_sample_set(data)
    path = Path(data)
    if not path.is_file():
        raise ValueError(
            f"--data {data!r} is neither a sample set ({', '.join(SAMPLE_SETS)}) nor a file"
        )
    import pandas as pd

    from kmg_autotrader.storage.candle_store import normalize_frame, validate_frame

    if path.suffix in (".parquet", ".pq"):
        raw = pd.read_parquet(path)
    elif path.suffix == ".feather":
        raw = pd.read_feather(path)
    else:
        raw = pd.read_csv(path)
    frame = normalize_frame(raw)
    validate_frame(frame, str(path))
    if len(frame) < 2:
        raise ValueError(f"{path}: need at least 2 candles")
    return {symbol or "BTC/USDT": frame}


def venue(
    exchange: str = typer.Option("binance", help="Exchange API to speak: binance or kraken."),
    data: str = typer.Option(
        "btc-usdt", help="Candles to replay: a sample set (btc-usdt, btc-pairs) or a CSV/parquet."
    ),
    symbol: str | None = typer.Option(
        None, help="Symbol of the candles in a --data file (default BTC/USDT)."
    ),
    speed: float = typer.Option(1.0, help="Venue time per wall time (60: a 5m candle every 5 s)."),
    port: int = typer.Option(8765, help="Port on 127.0.0.1 (0: any free port)."),
    api_key: str | None = typer.Option(None, help="API key of the account (default: generated)."),
    secret: str | None = typer.Option(None, help="Secret of the account (with --api-key)."),
    balance: str = typer.Option("10000", help="Starting balance of the account, in --quote."),
    quote: str | None = typer.Option(None, help="Currency of --balance (default USDT)."),
    warmup: int = typer.Option(1000, help="At least this many candles lie in the past at start."),
    state: Path | None = typer.Option(
        None, help="Books file (default DATA_DIR/venue/<exchange>-state.json)."
    ),
    no_state: bool = typer.Option(False, "--no-state", help="Keep the books in memory only."),
    chaos: int | None = typer.Option(None, help="Draw random faults with this seed."),
    chaos_rate: float = typer.Option(0.05, help="With --chaos: chance a request meets a fault."),
    fault: list[str] = typer.Option([], help="A fault to inject (repeatable); see --help text."),
    control_token: str | None = typer.Option(
        None, help="Token of the control endpoint /venue/ (default: generated)."
    ),
) -> None:
    """Start a local exchange on 127.0.0.1 (Binance or Kraken API) for a LIVE rehearsal.

    It replays recorded candles as live time (--speed 60: a 5m candle every 5 s; 0: the clock
    moves only through the control endpoint), matches orders with the exchange's fees,
    minimums and precision, checks request signatures with its keys and keeps its own books
    (in --state, so a restart keeps them). Point the bot at it with the printed
    EXCHANGE_API_URL=... line and keys.

    The lines it prints for .env (exchange, symbols, timeframe, TRADING_MODE=live, the URL and
    the keys) are all a .env made from .env.example needs; then run `kmg run --live`.

    Faults on demand: --fault KIND[:ENDPOINT][,key=value...], e.g.
    --fault rate_limit:create_order,times=3 (kinds: latency, timeout_after_accept, not_found,
    rate_limit, ban, server_error, partial_fill, ws_drop, ws_stall, ws_duplicate, ws_reorder,
    restart), or at random with --chaos SEED. Stop with Ctrl-C or SIGTERM.
    """
    settings = settings_or_exit()
    from kmg_autotrader.venue.faults import FaultError, FaultPlan, parse_fault_spec
    from kmg_autotrader.venue.server import AccountSpec, Venue, VenueError

    if (api_key is None) != (secret is None):
        fail("--api-key and --secret go together")
    if not 0 <= port <= 65535:
        fail(f"--port {port} is not a port number")
    if speed < 0:
        fail("--speed must be >= 0")
    if warmup < 0:
        fail("--warmup must be >= 0")
    try:
        start_balance = Decimal(balance)
        if not start_balance.is_finite() or start_balance < 0:
            raise InvalidOperation
    except InvalidOperation:
        fail(f"--balance {balance!r} is not a non-negative number")
    try:
        plan = FaultPlan(
            [parse_fault_spec(spec) for spec in fault], chaos_seed=chaos, chaos_rate=chaos_rate
        )
    except FaultError as exc:
        fail(str(exc))
    state_path = (
        None if no_state else (state or settings.data_dir / "venue" / f"{exchange}-state.json")
    )
    try:
        frames = load_data(data, symbol)
        accounts = []
        if api_key is not None and secret is not None:
            quote_ccy = quote or "USDT"
            accounts.append(AccountSpec(api_key, secret, {quote_ccy: start_balance}))
        built = Venue(
            exchange,
            frames,
            speed=speed,
            warmup=warmup,
            accounts=accounts,
            faults=plan,
            balance=start_balance,
            quote=quote,
            state_path=state_path,
            control_token=control_token,
        )
    except (VenueError, ValueError, OSError) as exc:
        fail(str(exc))
    try:
        asyncio.run(_serve(built, port, data, state_path))
    except OSError as exc:  # e.g. the port is taken
        fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", EXIT_FAILURE)


def _print_banner(v: Venue, data: str, state_path: Path | None) -> None:
    account = v.default_account
    # everything a .env made from .env.example needs for `kmg run --live` against this venue
    lines = [
        f"KMG venue ({v.exchange}) listening on {v.base_url}",
        "  put in .env (of a folder kept for the rehearsal: its LIVE records are a rehearsal's):",
        f"    EXCHANGE={v.exchange}",
        f"    SYMBOLS={','.join(v.market.symbols)}",
        f"    TIMEFRAME={_timeframe(v.market.step_ms)}",
        "    TRADING_MODE=live",
        f"    EXCHANGE_API_URL={v.base_url}",
    ]
    if v.generated_keys:
        prefix = v.exchange.upper()
        lines += [
            f"    {prefix}_API_KEY={account.api_key}",
            f"    {prefix}_SECRET_KEY={account.secret}",
            "  (test keys of this local venue, generated at its first start)",
        ]
    else:
        lines.append("  keys: the ones given with --api-key/--secret")
    symbols = ", ".join(v.market.symbols)
    lines += [
        f"  control token: {v.control_token}  (header X-Venue-Token, {v.base_url}/venue/state)",
        f"  data: {data} ({symbols}), speed {v.clock.speed:g}, "
        f"{v.market.step_ms // 60_000}m candles",
        f"  books: {state_path or 'in memory only'}",
    ]
    if v.faults.chaos:
        lines.append(f"  chaos: seed {v.faults.chaos_seed}, rate {v.faults.chaos_rate}")
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


def _timeframe(step_ms: int) -> str:
    """``5m``, ``1h``, ``1d`` for a candle length in ms."""
    for unit, ms in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if step_ms % ms == 0:
            return f"{step_ms // ms}{unit}"
    return f"{step_ms // 60_000}m"


async def _serve(v: Venue, port: int, data: str, state_path: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await v.start(port)
    try:
        _print_banner(v, data, state_path)
        await stop.wait()
    finally:
        await v.stop()
        console.print("venue stopped", highlight=False)
