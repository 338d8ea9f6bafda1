"""A LIVE rehearsal as a user runs it: ``kmg venue`` and ``kmg run`` as two processes.

The venue (:class:`VenueProcess`) is the exchange: its books, read through
:class:`~kmg_autotrader.venue.VenueClient`, are the truth. The bot (:class:`BotProcess`) is
``python -m kmg_autotrader.cli run [--live] [--no-web]`` with nothing but environment settings:
DATA_DIR in a temporary folder, the exchange, one symbol, the venue's keys and
``EXCHANGE_API_URL``. :class:`BotDatabase` reads what the bot recorded. :func:`wait_until`
polls a condition with a bounded wait and fails with one clear line plus the tail of the bot's
log. :class:`Rehearsal` ties them together.

No pytest here: the reliability script and a user's own checks can drive it too::

    async with Rehearsal(tmp_dir, VenueConfig(exchange="kraken", speed=150)) as r:
        r.set_risk()  # TRADE_SOON_RISK, as the dashboard's risk editor stores it
        r.start_bot(live=True)
        trades = await r.wait_for_venue_trades(2, timeout=120)
        await r.stop_bot()  # SIGTERM: exit 0 within 5 s, or HarnessError
        assert fill_mismatches(trades, r.db.fills(Mode.LIVE)) == []

``python -m tests.e2e.harness --exchange binance --live`` runs one and prints what it saw.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from kmg_autotrader.domain import Fill, Mode, Order, Position
from kmg_autotrader.risk.params import RiskParams, RiskParamsStore
from kmg_autotrader.storage.database import Database, open_database
from kmg_autotrader.storage.repositories import MAX_PAGE, Repositories
from kmg_autotrader.venue import VenueClient

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
CONTROL_TOKEN = "e2e-control-token"
# Fixed test keys of the local venue (Kraken's secret is base64, as Kraken's are).
KEYS: dict[str, tuple[str, str]] = {
    "binance": ("e2e-binance-key", "e2e-binance-secret"),
    "kraken": ("e2e-kraken-key", base64.b64encode(b"e2e-kraken-secret-0123456789abcdef").decode()),
}
# The environment a child keeps from ours: nothing that is a setting of the bot.
_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")
_URL = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")

# Settings that make the packaged btc-usdt sample trade every few dozen candles: the default
# strategy with a 3/30 SMA cross, every regime allowed to follow a cross, no confidence gate to
# speak of, a stop half an ATR below (mental stop-losses happen) and a target far enough above
# to pass the fee-edge rule (the gate's and the risk manager's: one computation).
TRADE_SOON: dict[str, str] = {
    "STRATEGY": "default",
    "SIGNAL_SMA_FAST": "3",
    "SIGNAL_SMA_SLOW": "30",
    "SIGNAL_ATR_PCT_MIN": "0",
    "SIGNAL_ATR_STOP_MULT": "0.5",
    "SIGNAL_ATR_TARGET_MULT": "10",
    "SIGNAL_CONFIDENCE_THRESHOLD": "0.05",
    "SIGNAL_CONFIDENCE_THRESHOLD_HIGH_VOLATILITY": "0.05",
    "SIGNAL_CONFIDENCE_THRESHOLD_CHOP": "0.05",
    "SIGNAL_PLAYBOOK_TREND_DOWN": "trend_following",
    "SIGNAL_PLAYBOOK_RANGE": "trend_following",
    "SIGNAL_PLAYBOOK_HIGH_VOLATILITY": "trend_following",
    "SIGNAL_PLAYBOOK_CHOP": "trend_following",
    "MAX_DRAWDOWN": "50",
}
# Risk parameters for the same purpose (stored before the start, as the dashboard's risk editor
# stores them): no cooldown between trades, no daily cap or loss limit in the way.
TRADE_SOON_RISK: dict[str, Any] = {
    "cooldown_minutes": 0,
    "cooldown_after_loss_minutes": 0,
    "max_trades_per_day": 10_000,
    "daily_loss_limit_percent": 50.0,
    "max_drawdown_percent": 50.0,  # a stored version holds every field: MAX_DRAWDOWN's too
}

T = TypeVar("T")
STEP_MS = 300_000  # the sample's 5m candles
DAY_MS = 86_400_000


class HarnessError(AssertionError):
    """A rehearsal step failed (one line saying what, then the logs that tell why)."""


def child_env(settings: Mapping[str, str]) -> dict[str, str]:
    """A clean environment for a child: PATH and friends, this checkout's source, ``settings``."""
    env = {k: v for k, v in os.environ.items() if k in _KEEP_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"  # rich must not wrap the venue's banner
    env.update(settings)
    return env


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' when it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _Process:
    """A child process whose stdout and stderr go to files in ``workdir``."""

    name = "process"

    def __init__(self, workdir: Path, tag: str) -> None:
        self.workdir = workdir
        self.stdout_path = workdir / f"{tag}.out"
        self.stderr_path = workdir / f"{tag}.err"
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_seconds: float | None = None  # how long the last stop took

    def _spawn(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "kmg_autotrader.cli", *args],
                cwd=self.workdir,  # no .env of the developer's is read
                env=dict(env),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int | None:
        """The child's pid (None before the start)."""
        return None if self.proc is None else self.proc.pid

    @property
    def running(self) -> bool:
        """True while the child lives."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code once it exited."""
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, lines: int = 40) -> str:
        """The tails of its stderr (the log) and stdout, for failure messages."""
        return (
            f"--- {self.name} stderr ({self.stderr_path}) ---\n{tail(self.stderr_path, lines)}\n"
            f"--- {self.name} stdout ---\n{tail(self.stdout_path, 10)}"
        )

    def stop(self, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the exit; returns the exit code. Raises
        :class:`HarnessError` (after a SIGKILL) when it does not exit within ``timeout`` s."""
        if self.proc is None:
            raise HarnessError(f"{self.name} was never started")
        if self.proc.poll() is not None:
            self.exit_seconds = 0.0
            return int(self.proc.returncode)
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise HarnessError(
                f"{self.name} did not exit within {timeout:g} s of signal {sig}\n{self.log_tail()}"
            ) from None
        self.exit_seconds = time.monotonic() - started
        return int(code)

    def kill(self) -> None:
        """SIGKILL (a crash: nothing is flushed) and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# ---- data ------------------------------------------------------------------------------------


def sample_slice(
    path: Path, start: int, end: int, warmup: int, *, now_ms: int | None = None
) -> Path:
    """Write rows ``[start - warmup, end)`` of the packaged btc-usdt sample to ``path`` (CSV),
    re-stamped so that a venue started now with ``--warmup warmup`` has exactly ``warmup`` of
    them in the past: sample row ``start`` is the candle forming at the venue's start, and the
    replay ends when row ``end - 1`` closes (then prices stay still: a quiet market).

    The venue keeps candles' UTC time of day (it shifts data by whole days), so the stamps are
    chosen for the current time of day (``now_ms``, default the wall clock); a venue started in
    the next 5-minute slot is one candle later, no more.
    """
    from kmg_autotrader.sample_data import load_sample_set

    if not warmup <= start < end:
        raise ValueError(f"need warmup <= start < end, got {warmup}, {start}, {end}")
    frame = load_sample_set("btc-usdt")["BTC/USDT"]
    rows = frame.iloc[start - warmup : end].reset_index(drop=True)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    opening = now // STEP_MS * STEP_MS
    first = opening - warmup * STEP_MS - 10 * DAY_MS
    rows["timestamp"] = first + rows.index * STEP_MS
    path.parent.mkdir(parents=True, exist_ok=True)
    rows[["timestamp", "open", "high", "low", "close", "volume"]].to_csv(path, index=False)
    return path


# ---- the venue -------------------------------------------------------------------------------


@dataclass
class VenueConfig:
    """How ``kmg venue`` is started. ``state``: the books file (None: ``--no-state``)."""

    exchange: str = "binance"
    speed: float = 60.0
    warmup: int = 1100
    data: str = "btc-usdt"
    balance: str = "10000"
    quote: str = "USDT"
    state: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    # sample rows (start, end) to replay, via sample_slice(): ``data`` is then that CSV
    rows: tuple[int, int] | None = None
    give_keys: bool = True  # False: the venue generates its keys and prints them

    @property
    def keys(self) -> tuple[str, str]:
        """(api key, secret) of the venue's account (when given)."""
        return KEYS[self.exchange]

    control_token: str = CONTROL_TOKEN


class VenueProcess(_Process):
    """``kmg venue`` on a free port; :meth:`start` returns once it printed its URL."""

    name = "kmg venue"

    def __init__(self, workdir: Path, config: VenueConfig) -> None:
        super().__init__(workdir, f"venue-{config.exchange}")
        self.config = config
        self.url = ""

    def args(self) -> list[str]:
        """The command line after ``kmg``."""
        c = self.config
        key, secret = c.keys
        args = ["venue", "--exchange", c.exchange, "--data", c.data, "--port", "0"]
        if c.data.endswith(".csv"):
            args += ["--symbol", "BTC/USDT"]
        args += ["--speed", f"{c.speed:g}", "--warmup", str(c.warmup)]
        if c.give_keys:
            args += ["--api-key", key, "--secret", secret]
        args += ["--control-token", c.control_token]
        args += ["--balance", c.balance, "--quote", c.quote]
        args += ["--state", str(c.state)] if c.state is not None else ["--no-state"]
        return args + list(c.extra_args)

    async def start(self, timeout: float = 30.0) -> str:
        """Start the venue and return its URL (``http://127.0.0.1:PORT``)."""
        if self.config.rows is not None:
            start, end = self.config.rows
            path = sample_slice(self.workdir / "venue-candles.csv", start, end, self.config.warmup)
            self.config.data = str(path)
        self._spawn(self.args(), child_env({"DATA_DIR": str(self.workdir / "venue-data")}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _URL.search(tail(self.stdout_path, 50))
            if found and "control token" in tail(self.stdout_path, 50):
                self.url = found.group(1)
                return self.url
            if not self.running:
                raise HarnessError(
                    f"kmg venue exited with {self.returncode} before listening\n{self.log_tail()}"
                )
            await asyncio.sleep(0.1)
        self.kill()
        raise HarnessError(f"kmg venue printed no URL within {timeout:g} s\n{self.log_tail()}")

    def env_lines(self) -> dict[str, str]:
        """The settings the venue printed for the bot's .env (under "put in .env")."""
        lines: dict[str, str] = {}
        block = False
        for line in tail(self.stdout_path, 50).splitlines():
            if "put in .env" in line:
                block = True
            elif block and line.startswith("    ") and "=" in line:
                name, _, value = line.strip().partition("=")
                lines[name] = value
            elif block:
                block = False
        return lines

    def client(self) -> VenueClient:
        """A control-endpoint client of this venue (close it when done)."""
        return VenueClient(self.url, self.config.control_token)


# ---- the bot ---------------------------------------------------------------------------------


class BotProcess(_Process):
    """``kmg run [--live] [--no-web]`` with the given settings (environment variables)."""

    name = "kmg run"

    def __init__(
        self, workdir: Path, settings: Mapping[str, str], *, live: bool, web: bool = False
    ) -> None:
        super().__init__(workdir, "bot")
        self.settings = dict(settings)
        self.live = live
        self.web = web

    def start(self) -> BotProcess:
        """Start ``kmg run`` (with its dashboard when ``web``)."""
        args = ["run", *(["--live"] if self.live else []), "--web" if self.web else "--no-web"]
        self._spawn(args, child_env(self.settings))
        return self


def run_command(
    workdir: Path, settings: Mapping[str, str], args: Sequence[str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run one ``kmg`` command (e.g. ``flatten --live``) to its end with ``settings``."""
    return subprocess.run(
        [PYTHON, "-m", "kmg_autotrader.cli", *args],
        cwd=workdir,
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class BotDatabase:
    """Read-only views of what the bot recorded (opened once the bot created the database)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db: Database | None = None
        self._repos: Repositories | None = None

    @property
    def repos(self) -> Repositories:
        """The repositories (the database must exist: wait for :meth:`ready` first)."""
        if self._repos is None:
            self._db = Database(self.url)
            self._repos = Repositories(self._db)
        return self._repos

    def ready(self) -> bool:
        """True once the bot's tables exist."""
        sqlite_file = self.url.removeprefix("sqlite:///")
        if sqlite_file != self.url and not Path(sqlite_file).exists():
            return False
        try:
            self.repos.events.recent(Mode.PAPER, limit=1)
        except Exception:
            return False
        return True

    def close(self) -> None:
        """Dispose of the engine."""
        if self._db is not None:
            self._db.dispose()
            self._db = None
            self._repos = None

    def orders(self, mode: Mode) -> list[Order]:
        """Every order of ``mode`` (newest first)."""
        return self.repos.orders.recent(mode, limit=MAX_PAGE)

    def fills(self, mode: Mode) -> list[Fill]:
        """Every fill of ``mode`` (newest first)."""
        return self.repos.fills.recent(mode, limit=MAX_PAGE)

    def open_positions(self, mode: Mode) -> list[Position]:
        """Open positions of ``mode``."""
        return self.repos.positions.open_positions(mode)

    def closed_positions(self, mode: Mode) -> list[Position]:
        """Closed positions of ``mode`` (newest first)."""
        return self.repos.positions.closed_positions(mode, limit=MAX_PAGE)

    def balances(self, mode: Mode) -> dict[str, Decimal]:
        """``{currency: total}`` of the balances table, zero rows left out."""
        return {b.currency: b.total for b in self.repos.balances.all(mode) if b.total != 0}

    def events(self, mode: Mode, kind: str | None = None) -> list[dict[str, Any]]:
        """Recorded events of ``mode`` (newest first)."""
        return self.repos.events.recent(mode, kind=kind, limit=MAX_PAGE)

    def signals(self, mode: Mode) -> list[dict[str, Any]]:
        """Recorded decisions (signals and candidates) of ``mode``."""
        return self.repos.signals.recent(mode, limit=MAX_PAGE)


# ---- waiting ---------------------------------------------------------------------------------


async def wait_until(
    condition: Callable[[], Awaitable[T | None] | T | None],
    *,
    what: str,
    timeout: float,
    watch: Sequence[_Process] = (),
    interval: float = 0.2,
) -> T:
    """Poll ``condition`` (sync or async) until it returns a truthy value, which is returned.

    Fails with :class:`HarnessError` naming ``what`` when ``timeout`` s pass or a watched
    process exits first, with the tails of the watched processes' logs.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
                value = await value
            if value:
                return value  # type: ignore[return-value]
        except HarnessError:
            raise
        except Exception as exc:  # e.g. the database is being created: keep polling
            last_error = exc
        for proc in watch:
            if proc.proc is not None and not proc.running:
                raise HarnessError(
                    f"{proc.name} exited with {proc.returncode} while waiting for {what}\n"
                    + "\n".join(p.log_tail() for p in watch)
                )
        if time.monotonic() >= deadline:
            why = f" (last error: {last_error!r})" if last_error else ""
            raise HarnessError(
                f"{what}: not reached within {timeout:g} s{why}\n"
                + "\n".join(p.log_tail() for p in watch)
            )
        await asyncio.sleep(interval)


# ---- the rehearsal ---------------------------------------------------------------------------


class Rehearsal:
    """A venue and the bot pointed at it, in ``workdir`` (an async context manager).

    ``bot_settings``: extra settings of the bot (default :data:`TRADE_SOON`).
    ``database_url``: POSTGRES_URL of the bot (default: SQLite under its DATA_DIR).
    """

    def __init__(
        self,
        workdir: Path,
        venue: VenueConfig | None = None,
        *,
        bot_settings: Mapping[str, str] | None = None,
        database_url: str | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.config = venue or VenueConfig()
        self.venue = VenueProcess(self.workdir, self.config)
        self.bot_settings = dict(TRADE_SOON if bot_settings is None else bot_settings)
        self.data_dir = self.workdir / "bot-data"
        self.postgres_url = database_url
        url = database_url or f"sqlite:///{(self.data_dir / 'kmg.sqlite').resolve()}"
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        self.db = BotDatabase(url)
        self.bot: BotProcess | None = None
        self._client: VenueClient | None = None

    async def __aenter__(self) -> Rehearsal:
        await self.venue.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.bot is not None:
                self.bot.kill()
            self.venue.kill()
        finally:
            if self._client is not None:
                await self._client.close()
            self.db.close()

    @property
    def client(self) -> VenueClient:
        """The venue's control client."""
        if self._client is None:
            self._client = self.venue.client()
        return self._client

    @property
    def api_key(self) -> str:
        """The venue account's API key."""
        return self.config.keys[0]

    @property
    def watch(self) -> list[_Process]:
        """The processes a wait fails on when they exit."""
        return [p for p in (self.bot, self.venue) if p is not None]

    def settings(self, *, live: bool, **extra: str) -> dict[str, str]:
        """The bot's settings: what a user puts in .env to rehearse against this venue."""
        exchange = self.config.exchange
        key, secret = self.config.keys
        prefix = exchange.upper()
        settings = {
            "DATA_DIR": str(self.data_dir),
            "EXCHANGE": exchange,
            "SYMBOLS": "BTC/USDT",
            "TIMEFRAME": "5m",
            f"{prefix}_API_KEY": key,
            f"{prefix}_SECRET_KEY": secret,
            "EXCHANGE_API_URL": self.venue.url,
            "TRADING_MODE": "live" if live else "paper",
            "ADVISOR_MODE": "off",
            "LOG_LEVEL": "INFO",
            **self.bot_settings,
        }
        if self.postgres_url:
            settings["POSTGRES_URL"] = self.postgres_url
        settings.update(extra)
        return settings

    def start_bot(self, *, live: bool, **extra: str) -> BotProcess:
        """Start ``kmg run`` (``--live`` when ``live``) against the venue."""
        if self.bot is not None and self.bot.running:
            raise HarnessError("kmg run is already running")
        self.bot = BotProcess(self.workdir, self.settings(live=live, **extra), live=live)
        return self.bot.start()

    async def stop_bot(self, timeout: float = 5.0) -> float:
        """SIGTERM the bot; it must exit 0 within ``timeout`` s. Returns the seconds it took."""
        if self.bot is None:
            raise HarnessError("kmg run was never started")
        code = await asyncio.to_thread(self.bot.stop, timeout)
        if code != 0:
            raise HarnessError(f"kmg run exited {code} after SIGTERM\n{self.bot.log_tail()}")
        assert self.bot.exit_seconds is not None
        return self.bot.exit_seconds

    def set_risk(
        self,
        changes: Mapping[str, Any] | None = None,
        *,
        modes: Sequence[Mode] = (Mode.PAPER, Mode.LIVE),
        source: str = "e2e",
    ) -> None:
        """Store a version of the risk parameters of each of ``modes`` (default
        :data:`TRADE_SOON_RISK`) in the bot's database, migrating it first, as the dashboard's
        risk editor does."""
        database = open_database(self.db.url)
        try:
            repo = Repositories(database).risk_params
            for mode in modes:
                store = RiskParamsStore(repo, RiskParams(), mode=mode)
                store.update(dict(TRADE_SOON_RISK if changes is None else changes), source=source)
        finally:
            database.dispose()

    def kmg(
        self, *args: str, live: bool, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run another ``kmg`` command with the bot's settings (e.g. ``flatten --live``)."""
        return run_command(self.workdir, self.settings(live=live), args, timeout)

    # ---- reading the truth and our records ---------------------------------------------------

    async def state(self) -> dict[str, Any]:
        """The venue's ``/venue/state``."""
        return await self.client.state()

    async def books(self) -> dict[str, Any]:
        """The venue account's books (balances, orders, trades)."""
        return await self.client.books(self.api_key)

    async def venue_totals(self) -> dict[str, Decimal]:
        """``{currency: free + used}`` at the venue, zero totals left out."""
        books = await self.books()
        totals = {c: Decimal(v["free"]) + Decimal(v["used"]) for c, v in books["balances"].items()}
        return {c: t for c, t in totals.items() if t != 0}

    async def wait_db(self, timeout: float = 60.0) -> None:
        """Until the bot's database exists and is migrated."""
        await wait_until(
            self.db.ready, what="the bot's database", timeout=timeout, watch=self.watch
        )

    async def wait_for(
        self,
        condition: Callable[[], Awaitable[T | None] | T | None],
        what: str,
        timeout: float = 60.0,
    ) -> T:
        """:func:`wait_until` watching both processes."""
        return await wait_until(condition, what=what, timeout=timeout, watch=self.watch)

    async def wait_for_candles(self, mode: Mode, count: int, timeout: float = 60.0) -> int:
        """Until the bot recorded equity for ``count`` closed candles after start-up."""

        def seen() -> int | None:
            points = self.db.repos.equity.series(mode)
            return len(points) if len(points) >= count else None

        return await self.wait_for(seen, f"{count} candles marked by the bot", timeout)

    async def wait_for_venue_trades(self, count: int, timeout: float = 60.0) -> list[Any]:
        """Until the venue's books hold ``count`` trades of our account."""

        async def trades() -> list[Any] | None:
            found = (await self.books())["trades"]
            return found if len(found) >= count else None

        return await self.wait_for(trades, f"{count} trades at the venue", timeout)


# ---- comparing our records with the venue's books --------------------------------------------

FEE_TOLERANCE = Decimal("1e-8")  # the venue's books keep fees unrounded; its wire shows 8 dp


def fill_mismatches(venue_trades: Sequence[Mapping[str, Any]], fills: Sequence[Fill]) -> list[str]:
    """Every venue trade must match exactly one of our fills and vice versa (trade id, client
    order id, side, amount, price; fee within :data:`FEE_TOLERANCE`). Returns the problems."""
    problems: list[str] = []
    ours: dict[str, list[Fill]] = {}
    for fill in fills:
        ours.setdefault(fill.trade_id, []).append(fill)
    theirs: dict[str, Mapping[str, Any]] = {str(t["exchange_id"]): t for t in venue_trades}
    for trade_id, trade in theirs.items():
        matched = ours.get(trade_id, [])
        if len(matched) != 1:
            problems.append(f"venue trade {trade_id} has {len(matched)} fills in our database")
            continue
        fill = matched[0]
        expected = (trade["client_order_id"], trade["side"], Decimal(trade["amount"]))
        got = (fill.client_order_id, fill.side.value, fill.amount)
        if expected != got or Decimal(trade["price"]) != fill.price:
            problems.append(
                f"trade {trade_id}: venue {expected} @ {trade['price']}, ours {got} @ {fill.price}"
            )
        if abs(Decimal(trade["fee"]) - fill.fee) > FEE_TOLERANCE:
            problems.append(f"trade {trade_id}: fee at the venue {trade['fee']}, ours {fill.fee}")
    for trade_id in ours.keys() - theirs.keys():
        problems.append(f"our fill {trade_id} is no trade at the venue")
    return problems


def balance_mismatches(
    venue: Mapping[str, Decimal], ours: Mapping[str, Decimal], tolerance: Decimal = FEE_TOLERANCE
) -> list[str]:
    """Currencies whose totals differ by more than ``tolerance`` (a missing one counts as 0)."""
    out = []
    for currency in sorted(set(venue) | set(ours)):
        a, b = venue.get(currency, Decimal(0)), ours.get(currency, Decimal(0))
        if abs(a - b) > tolerance:
            out.append(f"{currency}: venue {a}, ours {b}")
    return out


# ---- a rehearsal from the command line ----------------------------------------------------------


async def _main(exchange: str, live: bool, seconds: float, workdir: Path) -> int:
    mode = Mode.LIVE if live else Mode.PAPER
    async with Rehearsal(workdir, VenueConfig(exchange=exchange, speed=600.0)) as r:
        r.set_risk()
        r.start_bot(live=live)
        await r.wait_db()
        await asyncio.sleep(seconds)
        stop_seconds = await r.stop_bot()
        books = await r.books()
        problems = fill_mismatches(books["trades"], r.db.fills(mode)) if live else []
        problems += balance_mismatches(await r.venue_totals(), r.db.balances(mode)) if live else []
        print(f"kmg run ({mode.value}) on {exchange}: stopped in {stop_seconds:.1f} s")
        print(f"venue: {len(books['orders'])} orders, {len(books['trades'])} trades")
        print(f"ours: {len(r.db.orders(mode))} orders, {len(r.db.fills(mode))} fills")
        print("\n".join(problems) or "our fills and balances equal the venue's")
        print(f"logs and data: {workdir}")
        return 1 if problems else 0


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="One LIVE (or PAPER) rehearsal against kmg venue.")
    parser.add_argument("--exchange", choices=sorted(KEYS), default="binance")
    parser.add_argument("--live", action="store_true", help="kmg run --live (default: PAPER)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the bot runs")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kmg-rehearsal-"))
    sys.exit(asyncio.run(_main(args.exchange, args.live, args.seconds, folder)))
