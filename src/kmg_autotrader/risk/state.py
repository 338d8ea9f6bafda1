"""The risk manager's memory: equity peak, breaker, daily counters, per-symbol trade times.

:class:`RiskStateStore` is the interface; :class:`InMemoryRiskStateStore` serves backtests (no
database round-trip) and :class:`DbRiskStateStore` keeps the state in ``risk_state`` rows so the
breaker, the kill-switch and the daily counters survive a restart. The state is stored in five
sections, and a change writes only its sections. A manual clear of the breaker or the
kill-switch (``kmg resume``, the dashboard) is stored in its own ``clears`` section, which only a
clear writes: the trading loop, maybe in another process, absorbs it on its next equity mark
(see :func:`kmg_autotrader.risk.tracking.absorb_clears`), so a clear cannot be lost to a save
of the trading loop that read the state just before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from kmg_autotrader.domain import Mode

if TYPE_CHECKING:  # annotations only: a backtest never loads the database layer
    from kmg_autotrader.storage.repositories import RiskStateRepository

SECTIONS = ("equity", "breaker", "day", "symbols", "clears")


@dataclass(slots=True)
class RiskState:
    """Everything the rules remember between decisions (times are UTC epoch ms)."""

    # equity section: marked-to-market peak, the basis of the drawdown breaker
    peak_equity: Decimal | None = None
    last_equity: Decimal | None = None
    last_equity_at: int | None = None
    peak_reset_at: int | None = None  # the breaker clear (its time) this peak was reset for
    # breaker section: cleared only by an explicit clear (kmg resume, the dashboard)
    breaker_tripped: bool = False
    breaker_tripped_at: int | None = None
    breaker_reason: str = ""
    # day section: the UTC day (days since the epoch) and its counters
    day: int | None = None
    day_start_equity: Decimal | None = None
    trades_today: int = 0
    realized_pnl_today: Decimal = Decimal(0)
    kill_switch_tripped: bool = False
    kill_switch_at: int | None = None
    flatten_requested: bool = False
    pending_entries: dict[str, int] = field(default_factory=dict)  # symbol → approved at
    pending_costs: dict[str, Decimal] = field(default_factory=dict)  # symbol → approved cost
    day_reset_at: int | None = None  # the kill-switch clear (its time) the day's start reset for
    # symbols section: last entry, last exit and last losing exit per symbol
    last_entry_ms: dict[str, int] = field(default_factory=dict)
    last_exit_ms: dict[str, int] = field(default_factory=dict)
    last_loss_ms: dict[str, int] = field(default_factory=dict)
    # clears section: who cleared the breaker / kill-switch by hand, and when (written only by
    # a clear; a time here that the equity or day section has not absorbed is still pending)
    breaker_cleared_at: int | None = None
    breaker_cleared_by: str = ""
    kill_switch_cleared_at: int | None = None
    kill_switch_cleared_by: str = ""

    def section(self, name: str) -> dict[str, Any]:
        """One section as a JSON-safe dict."""
        return {key: _dump(getattr(self, key)) for key in _SECTION_FIELDS[name]}

    def load_section(self, name: str, values: dict[str, Any]) -> None:
        """Restore one section from :meth:`section` output (missing keys keep defaults)."""
        for key in _SECTION_FIELDS[name]:
            if key in values:
                setattr(self, key, _load(key, values[key]))


_SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "equity": ("peak_equity", "last_equity", "last_equity_at", "peak_reset_at"),
    "breaker": ("breaker_tripped", "breaker_tripped_at", "breaker_reason"),
    "day": (
        "day",
        "day_start_equity",
        "trades_today",
        "realized_pnl_today",
        "kill_switch_tripped",
        "kill_switch_at",
        "flatten_requested",
        "pending_entries",
        "pending_costs",
        "day_reset_at",
    ),
    "symbols": ("last_entry_ms", "last_exit_ms", "last_loss_ms"),
    "clears": (
        "breaker_cleared_at",
        "breaker_cleared_by",
        "kill_switch_cleared_at",
        "kill_switch_cleared_by",
    ),
}
_DECIMAL_FIELDS = {"peak_equity", "last_equity", "day_start_equity", "realized_pnl_today"}


def _dump(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _load(key: str, value: Any) -> Any:
    if key in _DECIMAL_FIELDS and value is not None:
        return Decimal(str(value))
    if key == "pending_costs":
        return {str(k): Decimal(str(v)) for k, v in value.items()}
    if isinstance(value, dict):
        return {str(k): int(v) for k, v in value.items()}
    return value


class RiskStateStore(Protocol):
    """Loads and saves :class:`RiskState`."""

    def load(self) -> RiskState:
        """The current state (a live object: the manager changes it, then saves)."""
        ...

    def save(self, state: RiskState, sections: Iterable[str]) -> None:
        """Persist the named sections of ``state``."""
        ...


class InMemoryRiskStateStore:
    """State held in memory only (backtests, tests): load and save cost nothing."""

    def __init__(self, state: RiskState | None = None) -> None:
        self._state = state if state is not None else RiskState()

    def load(self) -> RiskState:
        """The one state object."""
        return self._state

    def save(self, state: RiskState, sections: Iterable[str]) -> None:
        """Keep ``state`` (nothing to write)."""
        self._state = state


class DbRiskStateStore:
    """State in ``risk_state`` rows of one mode; every load reads the database afresh.

    Reading afresh means a resume made by another process (the dashboard) is seen by the
    trading loop's next decision.
    """

    def __init__(self, repo: RiskStateRepository, mode: Mode) -> None:
        self._repo = repo
        self._mode = mode

    def load(self) -> RiskState:
        """The stored state (defaults for sections never stored)."""
        state = RiskState()
        stored = self._repo.get_many(self._mode, [f"risk.{name}" for name in SECTIONS])
        for name in SECTIONS:
            values = stored.get(f"risk.{name}")
            if values is not None:
                state.load_section(name, values)
        return state

    def save(self, state: RiskState, sections: Iterable[str]) -> None:
        """Write the named sections."""
        for name in dict.fromkeys(sections):
            self._repo.set(self._mode, f"risk.{name}", state.section(name))
