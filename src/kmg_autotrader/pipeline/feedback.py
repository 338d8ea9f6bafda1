"""Telling the risk manager what execution did: entries filled, trades closed, equity marked.

The risk manager's cooldowns, daily counters, drawdown breaker and kill-switch live on these
calls. The live autopilot and the backtester both call :meth:`PositionFeedback.sync` after
prices or fills moved a symbol, so both feed the risk state the same way.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from kmg_autotrader.domain import Position

_NOTHING: frozenset[int] = frozenset()  # no position known for a symbol


class RiskBookkeeping(Protocol):
    """The risk manager's bookkeeping calls."""

    def record_entry(self, symbol: str, at_ms: int) -> None:
        """An entry was filled."""
        ...

    def record_trade_closed(self, symbol: str, pnl: Decimal, at_ms: int) -> None:
        """A position was closed with realised ``pnl``."""
        ...

    def cancel_entry(self, symbol: str) -> None:
        """An approved entry will not fill: free its slot."""
        ...

    def update_equity(self, equity: Decimal, at_ms: int) -> None:
        """Marked-to-market equity."""
        ...


class PositionStore(Protocol):
    """The store reads feedback needs."""

    def open_positions(self, symbol: str | None = None) -> list[Position]:
        """Positions not closed yet."""
        ...

    def get_position(self, position_id: int) -> Position | None:
        """One position by id."""
        ...


class PositionFeedback:
    """Watches positions per symbol and reports openings and closings to the risk manager."""

    def __init__(self, risk: RiskBookkeeping, store: PositionStore) -> None:
        self.risk = risk
        self.store = store
        self._open: dict[str, set[int]] = {}
        self._pending: dict[int, str] = {}  # entries sent, not filled yet: position id → symbol

    def entry_sent(self, symbol: str, position_id: int | None, status: str) -> None:
        """The pipeline executed an approved entry; ``status`` is the execution report's."""
        if position_id is None or status in ("rejected", "duplicate", "blocked", "skipped"):
            self.risk.cancel_entry(symbol)
            return
        self._pending[position_id] = symbol

    def sync(self, symbol: str, now_ms: int, *, positions: list[Position] | None = None) -> None:
        """Report positions of ``symbol`` that got their first fill or closed since last time.

        ``positions``: the open positions of ``symbol`` if the caller has just read them (the
        store is asked otherwise). Entries are recorded at their positions' open time and
        closes at their close time, so the risk clocks do not depend on when ``sync`` runs;
        ``now_ms`` is only the fallback for a close without a time.
        """
        if self._pending and symbol in self._pending.values():
            for pid in [p for p, s in self._pending.items() if s == symbol]:
                position = self.store.get_position(pid)
                if position is None or position.closed_at is not None:
                    # closed before a sync saw it hold anything (a closed position keeps its
                    # closed size as its amount, so test the close first)
                    del self._pending[pid]
                    self.risk.cancel_entry(symbol)
                elif position.amount > 0:
                    del self._pending[pid]  # filled: recorded as an entry below
        if positions is None:
            positions = self.store.open_positions(symbol)
        known = self._open.get(symbol, _NOTHING)
        # The usual case — nothing opened or closed since the last sync — is answered without
        # building a set or a dict: this runs after every event of a backtest.
        if len(positions) == len(known):
            for p in positions:
                if p.id not in known or not p.amount > 0:
                    break
            else:
                return  # ids are unique: the same positions (or none), all still holding
        holding = {p.id: p for p in positions if p.id is not None and p.amount > 0}
        if holding.keys() == known:
            return
        current = set(holding)
        for pid in sorted(current - known):
            # the entry's own time: a restart or a late sync must not restart its cooldown
            self.risk.record_entry(symbol, holding[pid].opened_at)
        for pid in known - current:
            position = self.store.get_position(pid)
            if position is not None and position.closed_at is not None:
                self.risk.record_trade_closed(
                    symbol, position.realized_pnl, position.closed_at or now_ms
                )
            elif position is not None and position.amount > 0:
                current.add(pid)  # still open (amount briefly read as zero): keep watching
        self._open[symbol] = current

    @property
    def pending(self) -> bool:
        """True while an entry was sent and has not filled or failed yet."""
        return bool(self._pending)

    def mark(self, equity: Decimal, now_ms: int) -> None:
        """Report marked-to-market equity (breaker and daily kill-switch)."""
        self.risk.update_equity(equity, now_ms)
