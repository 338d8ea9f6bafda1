"""Runtime-editable risk parameters: one validated model, versioned in the database.

Units as stored and computed with (the dashboard, its API and the CLI show every percentage in
percent and convert: :mod:`kmg_autotrader.risk.units`):

* ``max_position_percent`` and ``max_total_exposure_percent`` are *fractions* of equity
  (0.2 = 20 %), like the ``MAX_POSITION_PERCENT`` setting they start from;
* ``risk_per_trade_percent``, ``max_drawdown_percent`` and ``daily_loss_limit_percent`` are
  *percent* (5.0 = 5 %), like the ``MAX_DRAWDOWN`` setting;
* ``slippage_bps`` is basis points per fill; ``fee_safety_margin`` is a fraction of notional.

Precedence, per mode: the newest stored version of the mode (a dashboard edit) wins over the
settings (``.env`` or the environment), which win over the built-in defaults. A stored version
holds every field, so after one edit a later ``.env`` change of that mode is overridden:
:meth:`RiskParamsStore.effective` says so for each value (``kmg config check``, the dashboard).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import ms_to_iso
from kmg_autotrader.risk.units import percent_text

if TYPE_CHECKING:  # annotations only: a backtest never loads the database layer
    from kmg_autotrader.storage.repositories import RiskParamsRepository

_WEEK_MINUTES = 7 * 24 * 60
_BPS = Decimal(10_000)


class _RiskSettings(Protocol):
    """The part of ``Settings`` the defaults come from."""

    max_position_percent: float
    max_drawdown: float


class RiskParams(BaseModel):
    """Every rule's parameter. Ranges are enforced; cross-field rules are checked as a whole."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- sizing and exposure --------------------------------------------------------------------
    max_position_percent: float = Field(
        0.2, gt=0, le=1, description="hard cap of one position, fraction of equity (0.2 = 20 %)"
    )
    risk_per_trade_percent: float = Field(
        1.0, gt=0, le=10, description="equity risked between entry and stop, percent"
    )
    max_open_positions: int = Field(3, ge=1, le=100, description="open positions at most")
    max_total_exposure_percent: float = Field(
        0.8, gt=0, le=1, description="all positions together, fraction of equity"
    )
    stake_amount: float | None = Field(
        None,
        gt=0,
        le=1e12,
        description="fixed quote amount per entry instead of risk-based sizing (still capped)",
    )
    allow_min_size_adjust: bool = Field(
        False, description="raise a size below the market minimum up to it if every cap allows"
    )

    # --- cooldowns ------------------------------------------------------------------------------
    cooldown_minutes: int = Field(
        30, ge=0, le=_WEEK_MINUTES, description="no new entry in a symbol after a trade"
    )
    cooldown_after_loss_minutes: int = Field(
        120, ge=0, le=_WEEK_MINUTES, description="no new entry in a symbol after a losing trade"
    )

    # --- breakers -------------------------------------------------------------------------------
    max_drawdown_percent: float = Field(
        5.0, gt=0, le=100, description="drawdown from the equity peak that stops entries, percent"
    )
    daily_loss_limit_percent: float = Field(
        3.0, gt=0, le=100, description="loss from the UTC day's starting equity, percent"
    )
    flatten_on_daily_loss: bool = Field(
        False, description="also ask to close every position when the daily kill-switch trips"
    )
    max_trades_per_day: int = Field(20, ge=1, le=10_000, description="entries per UTC day")
    pending_entry_minutes: int = Field(
        60, ge=1, le=24 * 60, description="an approved, unfilled entry blocks its symbol this long"
    )

    # --- costs ----------------------------------------------------------------------------------
    slippage_bps: float = Field(5.0, ge=0, le=500, description="expected slippage per fill, bps")
    fee_safety_margin: float = Field(
        0.001, ge=0, le=0.1, description="extra edge over fees and slippage, fraction"
    )

    @model_validator(mode="after")
    def _check_cross_fields(self) -> RiskParams:
        if self.cooldown_after_loss_minutes < self.cooldown_minutes:
            raise ValueError(
                "cooldown_after_loss_minutes must be >= cooldown_minutes "
                f"({self.cooldown_after_loss_minutes} < {self.cooldown_minutes})"
            )
        if self.max_position_percent > self.max_total_exposure_percent:
            raise ValueError(
                "max_position_percent must be <= max_total_exposure_percent "
                f"({percent_text(self.max_position_percent)} > "
                f"{percent_text(self.max_total_exposure_percent)})"
            )
        return self

    @classmethod
    def from_settings(cls, settings: _RiskSettings, **overrides: Any) -> RiskParams:
        """Defaults taken from ``MAX_POSITION_PERCENT`` and ``MAX_DRAWDOWN``.

        The exposure cap is raised to the position cap if needed, so any valid setting works.
        """
        values: dict[str, Any] = {
            "max_position_percent": settings.max_position_percent,
            "max_drawdown_percent": settings.max_drawdown,
        }
        default_exposure = cls.model_fields["max_total_exposure_percent"].default
        values["max_total_exposure_percent"] = max(
            default_exposure, float(settings.max_position_percent)
        )
        values.update(overrides)
        return validate_params(values)


@dataclass(frozen=True, slots=True)
class ParamDecimals:
    """The float parameters the rules compute with, each as the Decimal it prints as."""

    max_position_percent: Decimal
    risk_per_trade_percent: Decimal
    max_total_exposure_percent: Decimal
    stake_amount: Decimal | None
    max_drawdown_percent: Decimal
    daily_loss_limit_percent: Decimal
    slippage_bps: Decimal
    fee_safety_margin: Decimal
    # derived once too: exact (a short decimal over a power of ten), so context-free
    slippage_rate: Decimal  # of one fill, a fraction: slippage_bps / 10_000
    slippage_round_trip: Decimal  # both fills: 2 * slippage_rate

    @classmethod
    def of(cls, params: RiskParams) -> ParamDecimals:
        """Convert every float field of ``params`` (``Decimal(str(value))``, as the rules did)."""
        stake = params.stake_amount
        slippage_bps = Decimal(str(params.slippage_bps))
        slippage_rate = slippage_bps / _BPS
        return cls(
            max_position_percent=Decimal(str(params.max_position_percent)),
            risk_per_trade_percent=Decimal(str(params.risk_per_trade_percent)),
            max_total_exposure_percent=Decimal(str(params.max_total_exposure_percent)),
            stake_amount=None if stake is None else Decimal(str(stake)),
            max_drawdown_percent=Decimal(str(params.max_drawdown_percent)),
            daily_loss_limit_percent=Decimal(str(params.daily_loss_limit_percent)),
            slippage_bps=slippage_bps,
            fee_safety_margin=Decimal(str(params.fee_safety_margin)),
            slippage_rate=slippage_rate,
            slippage_round_trip=2 * slippage_rate,
        )


# id(params) → (params, its decimals). Holding params keeps its id from being reused, so a hit
# is the very same (frozen) object; a new version of the parameters is a new object.
_DECIMALS: dict[int, tuple[RiskParams, ParamDecimals]] = {}
_DECIMALS_KEPT = 32


def param_decimals(params: RiskParams) -> ParamDecimals:
    """The Decimals of ``params``, converted once per parameters object.

    Every decision and equity mark needs the same few figures; converting them from floats
    each time was a measurable share of a backtest. A conversion is exact (no context), so a
    cached figure is the one a fresh conversion would give.
    """
    cached = _DECIMALS.get(id(params))
    if cached is not None and cached[0] is params:
        return cached[1]
    if len(_DECIMALS) >= _DECIMALS_KEPT:
        _DECIMALS.clear()
    decimals = ParamDecimals.of(params)
    _DECIMALS[id(params)] = (params, decimals)
    return decimals


# Which field a cross-field rule belongs to, so every error names a field.
_CROSS_FIELD_OWNERS = {
    "cooldown_after_loss_minutes must": "cooldown_after_loss_minutes",
    "max_position_percent must": "max_position_percent",
}


class RiskParamsError(Exception):
    """An invalid change: ``errors`` holds one ``{"field", "message"}`` per bad field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        loc = [str(part) for part in error.get("loc", ())]
        name = loc[0] if loc else ""
        if not name:
            name = next(
                (f for prefix, f in _CROSS_FIELD_OWNERS.items() if message.startswith(prefix)),
                "__root__",
            )
        errors.append({"field": name, "message": message})
    return errors


def validate_params(values: dict[str, Any]) -> RiskParams:
    """A validated model, or :class:`RiskParamsError` listing every bad field."""
    try:
        return RiskParams.model_validate(values)
    except ValidationError as exc:
        raise RiskParamsError(_field_errors(exc)) from None


def env_sources(settings: Any) -> dict[str, str]:
    """Parameter → the setting it came from, for those set in ``.env`` or the environment.

    A field not listed comes from the built-in default. ``max_total_exposure_percent`` follows
    ``MAX_POSITION_PERCENT`` only when that raised it above its default.
    """
    given: set[str] = set(getattr(settings, "model_fields_set", ()))
    out: dict[str, str] = {}
    if "max_position_percent" in given:
        out["max_position_percent"] = "MAX_POSITION_PERCENT"
        exposure = RiskParams.model_fields["max_total_exposure_percent"].default
        if float(settings.max_position_percent) > exposure:
            out["max_total_exposure_percent"] = "MAX_POSITION_PERCENT"
    if "max_drawdown" in given:
        out["max_drawdown_percent"] = "MAX_DRAWDOWN"
    return out


@dataclass(frozen=True, slots=True)
class EffectiveValue:
    """One parameter in effect and where it comes from.

    ``source`` is ``default``, ``.env (MAX_DRAWDOWN)`` or ``dashboard edit v3 at <UTC time>``;
    ``overrides`` is the ``.env`` value a stored edit overrides (None when they agree or the
    setting is not in ``.env``).
    """

    name: str
    value: Any
    source: str
    setting: str | None = None
    overrides: Any = None


@dataclass(frozen=True, slots=True)
class EffectiveParams:
    """The parameters of one mode in effect, each with its source."""

    mode: Mode
    version: int
    params: RiskParams
    values: list[EffectiveValue]
    stored: dict[str, Any] | None  # the version row in effect (None: no edit stored)


def _stored_label(row: Mapping[str, Any]) -> str:
    """``dashboard edit v3 at 2026-01-05T10:00:00Z`` (another writer is named instead)."""
    source = str(row.get("source") or "")
    what = "dashboard edit" if source.startswith("web") else f"edit by {source or 'unknown'}"
    return f"{what} v{row['version']} at {ms_to_iso(int(row['created_at']))}"


class RiskParamsStore:
    """The current risk parameters of one mode and their history.

    With a repository every read asks the database for the mode's newest version, so a change
    made by the dashboard (another process, maybe) applies to the very next decision. Without
    one (backtests) the parameters live in memory. Version 0 means "the defaults, never stored"
    (``defaults`` are built from the settings: see :meth:`from_settings`).

    ``mode`` scopes every read and write. A store built without one is bound to its risk
    manager's mode when the manager is built (:meth:`bind`); until then it reads and writes
    PAPER, the default mode.
    """

    def __init__(
        self,
        repo: RiskParamsRepository | None,
        defaults: RiskParams,
        *,
        mode: Mode | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._repo = repo
        self._defaults = defaults
        self._mode = mode
        self._env = dict(env or {})
        self._version = 0
        self._params = defaults
        self._history: list[dict[str, Any]] = []

    @classmethod
    def from_settings(
        cls, repo: RiskParamsRepository | None, settings: Any, mode: Mode
    ) -> RiskParamsStore:
        """The store of ``mode`` with defaults (and their sources) from the settings."""
        return cls(repo, RiskParams.from_settings(settings), mode=mode, env=env_sources(settings))

    @property
    def mode(self) -> Mode:
        """The mode whose versions this store reads and writes."""
        return self._mode if self._mode is not None else Mode.PAPER

    def bind(self, mode: Mode) -> None:
        """Scope a store built without a mode to ``mode``; a store of another mode is refused."""
        if self._mode is None:
            self._mode = mode
            self._version, self._params = 0, self._defaults  # nothing cached of another mode
        elif self._mode is not mode:
            raise ValueError(f"risk parameters of {self._mode.value} given to a {mode.value} bot")

    def current(self) -> tuple[int, RiskParams]:
        """The newest version number and its parameters."""
        version, params, _ = self._snapshot()
        return version, params

    def _snapshot(self) -> tuple[int, RiskParams, dict[str, Any] | None]:
        """Version, parameters and the stored row in effect (None: the defaults)."""
        if self._repo is None:
            return self._version, self._params, (self._history[0] if self._history else None)
        row = self._repo.latest(self.mode)
        if row is None:
            return 0, self._defaults, None
        version = int(row["version"])
        if version != self._version:
            self._version, self._params = version, self._load_stored(row)
        return self._version, self._params, row

    def _load_stored(self, row: dict[str, Any]) -> RiskParams:
        """A stored version, merged over the defaults (fields added later get their default)."""
        stored = {k: v for k, v in dict(row["params"]).items() if k in RiskParams.model_fields}
        try:
            return validate_params({**self._defaults.model_dump(), **stored})
        except RiskParamsError as exc:
            # A stored row should never be invalid; if it is, refuse to guess looser limits.
            logger.error("stored risk parameters v{} are invalid: {}", row["version"], exc)
            raise

    def effective(self, env: Mapping[str, str] | None = None) -> EffectiveParams:
        """Each parameter in effect with its source (``env``: :func:`env_sources` of the
        settings; default: the ones given at construction)."""
        env = self._env if env is None else env
        version, params, row = self._snapshot()
        stored = set(dict(row["params"])) if row is not None else set()
        label = _stored_label(row) if row is not None else ""
        values = []
        for name in RiskParams.model_fields:
            value, setting = getattr(params, name), env.get(name)
            if name in stored:
                given = getattr(self._defaults, name)
                shadowed = given if setting is not None and given != value else None
                values.append(EffectiveValue(name, value, label, setting, shadowed))
            else:
                source = f".env ({setting})" if setting is not None else "default"
                values.append(EffectiveValue(name, value, source, setting))
        return EffectiveParams(self.mode, version, params, values, row)

    def update(
        self, changes: dict[str, Any], *, source: str, comment: str = ""
    ) -> tuple[int, RiskParams]:
        """Merge ``changes`` over the current parameters, validate the whole, store a version.

        Raises :class:`RiskParamsError` (nothing stored, current parameters untouched) when any
        field is unknown or invalid, or a cross-field rule fails.
        """
        _, current = self.current()
        unknown = [
            {"field": str(name), "message": "unknown risk parameter"}
            for name in changes
            if name not in RiskParams.model_fields
        ]
        known = {k: v for k, v in changes.items() if k in RiskParams.model_fields}
        try:
            params = validate_params({**current.model_dump(), **known})
        except RiskParamsError as exc:
            raise RiskParamsError(unknown + exc.errors) from None
        if unknown:
            raise RiskParamsError(unknown)
        source = (source or "unknown")[:64]
        if self._repo is None:
            self._version += 1
            self._params = params
            self._history.insert(0, self._history_row(self._version, params, source, comment))
        else:
            version = self._repo.add(self.mode, params.model_dump(), source=source, comment=comment)
            self._version, self._params = version, params
        logger.info(
            "{} risk parameters v{} set by {}: {}", self.mode.value, self._version, source, known
        )
        return self._version, params

    @staticmethod
    def _history_row(version: int, params: RiskParams, source: str, comment: str) -> dict[str, Any]:
        from kmg_autotrader.domain.clock import now_ms

        return {
            "version": version,
            "params": params.model_dump(),
            "source": source,
            "comment": comment,
            "created_at": now_ms(),
        }

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """Stored versions, newest first: ``{version, params, source, comment, created_at}``."""
        if self._repo is None:
            return [dict(row) for row in self._history[:limit]]
        keys = ("version", "params", "source", "comment", "created_at")
        return [{k: row[k] for k in keys} for row in self._repo.history(self.mode, limit)]
