"""Settings: one validated pydantic-settings model read from the environment and ``.env``.

A bad value never produces a traceback: :func:`load_settings` raises :class:`ConfigError`
carrying one human line per bad variable, and the CLI prints those lines and exits with code 2.
"""

from __future__ import annotations

import ast
import importlib.util
import ipaddress
import sys
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kmg_autotrader.domain import ExecutionMode, Mode
from kmg_autotrader.fs import unwritable_reason
from kmg_autotrader.signals.params import ENV_PREFIX as SIGNAL_ENV_PREFIX
from kmg_autotrader.signals.params import SignalParams

_TIMEFRAME_MINUTES = {
    "1m": 1,
    "3m": 3,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "4h": 240,
    "6h": 360,
    "12h": 720,
    "1d": 1440,
}

SECRET_FIELDS = (
    "openai_api_key",
    "binance_api_key",
    "binance_secret_key",
    "kraken_api_key",
    "kraken_secret_key",
    "telegram_token",
    "discord_webhook_url",
    "api_token",
    "web_secret_key",
    "postgres_url",
    "alert_urls",
)


def timeframe_to_ms(timeframe: str) -> int:
    """Length of one candle of ``timeframe`` (e.g. ``"5m"``) in milliseconds."""
    try:
        return _TIMEFRAME_MINUTES[timeframe] * 60_000
    except KeyError as exc:
        raise ValueError(
            f"unknown timeframe {timeframe!r}; use one of {', '.join(_TIMEFRAME_MINUTES)}"
        ) from exc


def known_exchange_ids() -> list[str]:
    """Every exchange id the installed ccxt knows.

    Read from the ``exchanges = [...]`` list in ccxt's ``__init__.py`` without importing ccxt
    (~1.5 CPU-s and ~90 MB that a backtest or the paper commands never use); from
    ``ccxt.exchanges`` itself when ccxt is already loaded or its source does not have that list.
    """
    loaded = sys.modules.get("ccxt")
    if loaded is None:
        listed = _ccxt_exchange_ids_from_source()
        if listed is not None:
            return list(listed)
    import ccxt

    return list(ccxt.exchanges)


@cache
def _ccxt_exchange_ids_from_source() -> tuple[str, ...] | None:
    """The literal ``exchanges`` list of ccxt's ``__init__.py``, or None if it cannot be read."""
    spec = importlib.util.find_spec("ccxt")
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "exchanges" for target in node.targets
        ):
            try:
                ids = ast.literal_eval(node.value)
            except ValueError:
                return None
            if isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids):
                return tuple(ids)
            return None
    return None


def _origin_url(value: str, *, websocket: bool) -> str:
    """``scheme://host[:port]`` of an exchange URL override; ValueError with the reason.

    Only the origin is taken: the exchange class keeps its own paths (see exchange/urls.py),
    so a path here would be silently ignored and is refused instead.
    """
    parts = urlsplit(value.strip())
    schemes = ("ws", "wss") if websocket else ("http", "https")
    example = "ws://127.0.0.1:8765" if websocket else "http://127.0.0.1:8765"
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"must be an absolute {' or '.join(s + '://' for s in schemes)} URL")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"bad port; give scheme, host and port only, e.g. {example}") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(
            f"give scheme, host and port only, e.g. {example} (the exchange's paths are kept)"
        )
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _has_sandbox(exchange_id: str) -> bool:
    """True when ccxt knows a sandbox (test) URL for the exchange (loads ccxt: sandbox only)."""
    import ccxt

    cls = getattr(ccxt, exchange_id, None)
    return cls is not None and bool((cls().urls or {}).get("test"))


class ConfigError(Exception):
    """Raised when settings are invalid; ``lines`` has one message per bad variable."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class EnvFileError(ConfigError):
    """The ``.env`` file itself cannot be read as text (binary, not UTF-8, unreadable)."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


def check_env_file(env_file: str | Path | None) -> None:
    """Raise :class:`EnvFileError` when ``env_file`` exists but is not readable UTF-8 text.

    pydantic-settings and python-dotenv would end in a ``UnicodeDecodeError`` traceback, or
    read a binary file's bytes as garbage settings.
    """
    if env_file is None:
        return
    path = Path(env_file)
    try:
        if not path.is_file():
            return  # a missing .env is normal: the environment alone is used
        data = path.read_bytes()
    except OSError as exc:
        raise EnvFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    hint = "it must be a text file of NAME=value lines (see .env.example)"
    nul = data.find(b"\x00")
    if nul >= 0:
        raise EnvFileError(f"{path} is not a text file (NUL byte at offset {nul}); {hint}")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvFileError(
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); {hint}"
        ) from None


class Settings(BaseSettings):
    """Every setting of the bot. Environment variables use the upper-case field name."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    # --- LLM advisor -------------------------------------------------------------------------
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    advisor_mode: Literal["off", "advisory", "required"] = "advisory"
    llm_provider: Literal["openai", "local"] = "openai"
    llm_json_mode: Literal["json_schema", "json_object", "grammar"] = "json_schema"
    llm_timeout_seconds: float = Field(30.0, gt=0, le=600)
    gguf_model_path: Path | None = None
    gpt_call_limit_per_hour: int = Field(10, ge=0, le=10_000)
    advisor_symbol_cooldown_minutes: int = Field(15, ge=0, le=24 * 60)

    # --- Exchange ----------------------------------------------------------------------------
    exchange: str = "binance"
    binance_api_key: SecretStr | None = None
    binance_secret_key: SecretStr | None = None
    kraken_api_key: SecretStr | None = None
    kraken_secret_key: SecretStr | None = None
    # Another origin for every REST (and WebSocket) URL of the exchange class: a local venue
    # (`kmg venue`) for a LIVE rehearsal. The WebSocket origin defaults to the REST one.
    exchange_api_url: str | None = None
    exchange_ws_url: str | None = None
    exchange_sandbox: bool = False  # ccxt sandbox mode (Binance: spot testnet, testnet keys)
    # `kmg run` retries an exchange it cannot reach at start (backoff 2 s doubling to 60 s);
    # after this many seconds unreachable it exits 1 so a supervisor can act (0: retry forever)
    exchange_unreachable_exit_seconds: float = Field(900.0, ge=0)
    symbols: Annotated[list[str], NoDecode] = ["BTC/USDT", "ETH/USDT"]
    timeframe: str = "5m"
    trading_mode: Mode = Mode.PAPER
    execution_mode: ExecutionMode = ExecutionMode.MARKET_ONLY
    paper_starting_balance: float = Field(10_000.0, gt=0)
    paper_quote_currency: str = "USDT"

    # --- Storage -----------------------------------------------------------------------------
    postgres_url: SecretStr | None = None
    data_dir: Path = Path("data")

    # --- Alerts ------------------------------------------------------------------------------
    telegram_token: SecretStr | None = None
    telegram_chat_id: str | None = None
    discord_webhook_url: SecretStr | None = None
    alert_urls: SecretStr | None = None  # extra Apprise URLs, comma-separated

    # --- Risk --------------------------------------------------------------------------------
    # units as the spec gives them: MAX_POSITION_PERCENT a fraction of 1, MAX_DRAWDOWN percent
    # (the dashboard, its API and the CLI show both in percent: 20 %, 5 %)
    max_position_percent: float = Field(
        0.2, gt=0, le=1, description="hard cap per position, a fraction of equity: 0.2 = 20 %"
    )
    max_drawdown: float = Field(
        5.0, gt=0, le=100, description="drawdown breaker, percent below the equity peak: 5.0 = 5 %"
    )

    # --- Strategy ----------------------------------------------------------------------------
    strategy: str = "default"
    # Indicator/rule/filter tunables, from SIGNAL_<FIELD> variables (see signals/params.py).
    signal_params: SignalParams = Field(default_factory=SignalParams, exclude=True)

    # --- Web ---------------------------------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int = Field(8000, ge=1, le=65535)
    api_token: SecretStr | None = None
    web_secret_key: SecretStr | None = None
    # Served to browsers through a TLS-terminating proxy: session cookies get `Secure`
    web_tls_proxy: bool = False

    # --- Persona -----------------------------------------------------------------------------
    assistant_name: str = "Zin"
    user_name: str = "jimmy"

    # --- Logging -----------------------------------------------------------------------------
    log_level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR"] = "INFO"

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one symbol, e.g. BTC/USDT")
        for symbol in value:
            base, sep, quote = symbol.partition("/")
            if not sep or not base or not quote or "/" in quote:
                raise ValueError(f"{symbol!r} is not a ccxt unified symbol like BTC/USDT")
        return [s.upper() for s in value]

    @field_validator("timeframe")
    @classmethod
    def _check_timeframe(cls, value: str) -> str:
        timeframe_to_ms(value)
        return value

    @field_validator("exchange")
    @classmethod
    def _check_exchange(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in known_exchange_ids():
            raise ValueError(f"unknown exchange id {value!r} (ccxt does not know it)")
        return value

    @field_validator("openai_base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("exchange_api_url", "exchange_ws_url", mode="before")
    @classmethod
    def _check_exchange_url(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return None
        if not isinstance(value, str):
            return value
        websocket = info.field_name == "exchange_ws_url"
        return _origin_url(value, websocket=websocket)

    @field_validator("web_host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator(
        "openai_api_key",
        "binance_api_key",
        "binance_secret_key",
        "kraken_api_key",
        "kraken_secret_key",
        "telegram_token",
        "discord_webhook_url",
        "alert_urls",
        "api_token",
        "web_secret_key",
        "postgres_url",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() == "":
            return None
        return value

    @field_validator("telegram_chat_id", "gguf_model_path", mode="before")
    @classmethod
    def _empty_plain_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() == "":
            return None
        return value

    @field_validator("data_dir")
    @classmethod
    def _check_data_dir(cls, value: Path) -> Path:
        # refuse here, not with a traceback from the first mkdir (logs, database, candles)
        reason = unwritable_reason(value)
        if reason is not None:
            raise ValueError(f"{reason}; DATA_DIR must be a folder this user can write")
        return value

    @field_validator("postgres_url")
    @classmethod
    def _check_postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        if not raw.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("must look like postgresql://user:password@host/dbname")
        return value

    @model_validator(mode="after")
    def _check_cross_fields(self) -> Settings:
        if self.exchange_ws_url is not None and self.exchange_api_url is None:
            raise ValueError(
                "EXCHANGE_WS_URL is set but EXCHANGE_API_URL is empty (the REST origin is needed)"
            )
        if self.exchange_sandbox and not _has_sandbox(self.exchange):
            raise ValueError(
                f"EXCHANGE_SANDBOX=true but ccxt has no sandbox (testnet) for {self.exchange}"
            )
        if self.telegram_token is not None and not self.telegram_chat_id:
            raise ValueError("TELEGRAM_TOKEN is set but TELEGRAM_CHAT_ID is empty")
        no_llm = (
            self.llm_provider != "local"
            and self.openai_api_key is None
            and self.openai_base_url is None
        )
        if self.advisor_mode == "required" and no_llm:
            # "required" means no trade without an LLM approval: refuse rather than trade on
            # rules alone because the advisor is off for want of an endpoint
            raise ValueError(
                "ADVISOR_MODE=required needs an LLM: set OPENAI_API_KEY and/or OPENAI_BASE_URL, "
                "or LLM_PROVIDER=local"
            )
        return self

    # ---- derived values -----------------------------------------------------------------------

    @property
    def timeframe_ms(self) -> int:
        """Length of one candle in milliseconds."""
        return timeframe_to_ms(self.timeframe)

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL: PostgreSQL (psycopg 3) if configured, else SQLite under DATA_DIR."""
        if self.postgres_url is not None:
            raw = self.postgres_url.get_secret_value()
            for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
                if raw.startswith(prefix):
                    return "postgresql+psycopg://" + raw[len(prefix) :]
        return f"sqlite:///{(self.data_dir / 'kmg.sqlite').resolve()}"

    @property
    def web_is_loopback(self) -> bool:
        """True when the web API binds to a loopback address only."""
        if self.web_host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.web_host).is_loopback
        except ValueError:
            return False

    def exchange_credentials(self) -> tuple[SecretStr | None, SecretStr | None]:
        """API key and secret for the configured exchange (None when absent)."""
        if self.exchange == "binance":
            return self.binance_api_key, self.binance_secret_key
        if self.exchange == "kraken":
            return self.kraken_api_key, self.kraken_secret_key
        return None, None

    def live_requirements_missing(self) -> list[str]:
        """What is missing before LIVE trading could be enabled (empty list: nothing)."""
        missing: list[str] = []
        key, secret = self.exchange_credentials()
        prefix = self.exchange.upper()
        if key is None:
            missing.append(f"{prefix}_API_KEY is not set")
        if secret is None:
            missing.append(f"{prefix}_SECRET_KEY is not set")
        if self.trading_mode is not Mode.LIVE:
            missing.append("TRADING_MODE is not 'live'")
        missing.append("the --live flag must be given on the command line")
        return missing

    def secret_values(self) -> list[str]:
        """Every configured secret in clear text, for the log redactor (never print these)."""
        values: list[str] = []
        for name in SECRET_FIELDS:
            secret = getattr(self, name)
            if isinstance(secret, SecretStr):
                raw = secret.get_secret_value()
                if raw:
                    values.append(raw)
                    # also redact the password part of a database URL on its own
                    if name == "postgres_url" and "@" in raw and ":" in raw.split("@")[0]:
                        password = raw.split("@")[0].rsplit(":", 1)[-1]
                        if len(password) >= 4:
                            values.append(password)
        return values

    def masked(self) -> dict[str, str]:
        """Every setting as text, secrets shown only as set/unset."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "signal_params":
                continue  # shown separately: it is a group of SIGNAL_* variables
            if isinstance(value, SecretStr):
                out[name.upper()] = "****** (set)" if value.get_secret_value() else "(unset)"
            elif value is None:
                out[name.upper()] = "(unset)"
            elif isinstance(value, list):
                out[name.upper()] = ",".join(map(str, value))
            else:
                out[name.upper()] = str(value)
        return out


def _format_errors(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if not isinstance(part, int)]
        name = loc[0].upper() if loc else "SETTINGS"
        message = error.get("msg", "invalid value")
        message = message.removeprefix("Value error, ")
        raw = error.get("input")
        if name in {n.upper() for n in SECRET_FIELDS}:
            shown = ""
        elif isinstance(raw, str | int | float) and not isinstance(raw, bool):
            shown = f" (got {raw!r})"
        else:
            shown = ""
        lines.append(f"{name}: {message}{shown}")
    return lines


# the fee gate's own costs, gone since it shares the risk manager's fee-edge computation
_REMOVED_SIGNAL = {
    f"{SIGNAL_ENV_PREFIX}{name}": f"{SIGNAL_ENV_PREFIX}{name}: no longer a setting; the fee gate "
    "uses the risk limits' slippage_bps and fee_safety_margin (the dashboard's risk editor)"
    for name in ("FEE_SAFETY_MARGIN", "SLIPPAGE_ALLOWANCE")
}


def _signal_params(env_file: str | Path | None) -> SignalParams:
    """SignalParams from SIGNAL_* variables in the .env file and the environment (env wins)."""
    import os

    from dotenv import dotenv_values

    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ)
    signal_env = {
        k.upper(): v for k, v in merged.items() if k.upper().startswith(SIGNAL_ENV_PREFIX)
    }
    unknown = sorted(
        k
        for k in signal_env
        if k[len(SIGNAL_ENV_PREFIX) :].lower() not in SignalParams.model_fields
    )
    if unknown:
        raise ConfigError(
            [_REMOVED_SIGNAL.get(k, f"{k}: unknown signal parameter") for k in unknown]
        )
    try:
        return SignalParams.from_env(signal_env)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ())]
            name = SIGNAL_ENV_PREFIX + loc[0].upper() if loc else "SIGNAL_PARAMETERS"
            lines.append(
                f"{name}: {error.get('msg', 'invalid value').removeprefix('Value error, ')}"
            )
        raise ConfigError(lines) from None


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Read and validate the settings; raise :class:`ConfigError` with one line per bad variable."""
    check_env_file(env_file)
    lines: list[str] = []
    settings: Settings | None = None
    try:
        settings = Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        lines.extend(_format_errors(exc))
    try:
        signal_params = _signal_params(env_file)
    except ConfigError as exc:
        lines.extend(exc.lines)
    if lines or settings is None:
        raise ConfigError(lines)
    if "signal_params" not in overrides:
        settings = settings.model_copy(update={"signal_params": signal_params})
    return settings
