"""The risk manager: the one gate every order passes, paper or live.

``evaluate`` validates the candidate, marks equity (which may trip the breaker or the
kill-switch), then hands entries to :mod:`.entries` (every gate, then sizing) and exits to
:mod:`.exits` (sized to what is held, never blocked by entry-only rules). Every decision says
why, lists each clamp it applied, and is stored when a repository is given.
"""

from __future__ import annotations

import dataclasses
import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loguru import logger

from kmg_autotrader.domain import (
    Candidate,
    ExecutionMode,
    MarketInfo,
    Mode,
    OrderIntent,
    RiskDecision,
    Side,
)
from kmg_autotrader.domain.clock import Clock
from kmg_autotrader.risk import entries, rules, tracking
from kmg_autotrader.risk.draft import DecisionDraft, to_decimal
from kmg_autotrader.risk.events import CLEARED_KINDS, RiskEvent, RiskEventHandler, RiskEventKind
from kmg_autotrader.risk.exits import decide_exit
from kmg_autotrader.risk.params import RiskParams, RiskParamsStore
from kmg_autotrader.risk.portfolio_state import PortfolioState
from kmg_autotrader.risk.reasons import ReasonCode
from kmg_autotrader.risk.rules import Rejection
from kmg_autotrader.risk.state import RiskState, RiskStateStore
from kmg_autotrader.risk.status import build_status

if TYPE_CHECKING:  # annotations only: a backtest never loads the database layer
    from kmg_autotrader.storage.repositories import EventRepository, RiskDecisionRepository

_DAY_MS = tracking.DAY_MS
# Symbol trade times older than this cannot matter to any cooldown (max one week).
_FORGET_AFTER_MS = 8 * _DAY_MS
_SELL = Side.SELL  # an enum member read through its class costs a __getattr__ hook each time
# What recording a trade changes (a new UTC day changes only the day section too).
_DAY_AND_SYMBOLS = ("day", "symbols")


class RiskManager:
    """Approves and sizes trade candidates, or rejects them with a reason code and a message.

    ``state`` is a :class:`~kmg_autotrader.risk.state.RiskStateStore`: in memory for backtests,
    ``DbRiskStateStore`` live so the breaker, the kill-switch and the daily counters survive a
    restart. ``decisions=None`` skips storing decisions (backtests). ``on_event`` hears breaker
    and kill-switch events (the autopilot turns them into alerts, and flattens when asked);
    ``event_log`` also stores them as ``events`` rows (source ``risk``).
    """

    def __init__(
        self,
        *,
        mode: Mode,
        params: RiskParamsStore,
        state: RiskStateStore,
        decisions: RiskDecisionRepository | None,
        clock: Clock,
        execution_mode: ExecutionMode = ExecutionMode.MARKET_ONLY,
        on_event: RiskEventHandler | None = None,
        event_log: EventRepository | None = None,
    ) -> None:
        self._mode = mode
        params.bind(mode)  # a store built without a mode reads and writes this manager's
        self._params = params
        self._state = state
        self._decisions = decisions
        self._clock = clock
        self._execution_mode = execution_mode
        self._on_event = on_event
        self._event_log = event_log
        self._lock = threading.RLock()

    # ---- the gate ----------------------------------------------------------------------------

    def evaluate(
        self,
        candidate: Candidate,
        portfolio: PortfolioState,
        market: MarketInfo,
        *,
        signal_id: int | None = None,
    ) -> RiskDecision:
        """Approve (with a sized ``OrderIntent`` in ``decision.intent``) or reject a candidate.

        A bug or bad data inside the rules rejects with ``INTERNAL_ERROR``: never an approval.
        Exits read neither the parameters nor the stored state, so neither can block them.
        """
        with self._lock:
            draft = DecisionDraft(candidate, self._clock.now_ms())
            try:
                # stored one by one: a keyword update() builds a dict of its own first
                checks = draft.checks
                checks["equity"] = portfolio.equity
                checks["cash"] = portfolio.cash
                checks["exposure"] = portfolio.exposure
                checks["open_positions"] = len(portfolio.positions)
                if candidate.side is _SELL:
                    decision = self._decide_exit(draft, portfolio, market, signal_id)
                else:
                    decision = self._decide_entry(draft, portfolio, market, signal_id)
            except Exception as exc:  # fail closed: an unexplained error is a "no"
                logger.exception("risk evaluation of {} failed", candidate.symbol)
                decision = draft.reject(
                    Rejection(ReasonCode.INTERNAL_ERROR, f"risk evaluation failed: {exc!r}")
                )
            return self._store(decision, draft.checks.get("params_version"), signal_id)

    def _decide_exit(
        self,
        draft: DecisionDraft,
        portfolio: PortfolioState,
        market: MarketInfo,
        signal_id: int | None,
    ) -> RiskDecision:
        """Validate, then size the sell to what is held."""
        invalid = rules.check_candidate(draft.candidate, portfolio, market)
        if invalid:
            return draft.reject(invalid)
        return decide_exit(draft, portfolio, market, mode=self._mode, signal_id=signal_id)

    def _decide_entry(
        self,
        draft: DecisionDraft,
        portfolio: PortfolioState,
        market: MarketInfo,
        signal_id: int | None,
    ) -> RiskDecision:
        """Validate, mark equity, pass every gate, size; count an approval at once."""
        version, params = self._params.current()
        draft.checks["params_version"] = version
        invalid = rules.check_candidate(
            draft.candidate, portfolio, market, stop_required=params.stake_amount is None
        )
        if invalid:
            return draft.reject(invalid)
        state = self._state.load()
        # Marking equity here too means the breaker cannot be skipped by a caller that
        # forgets update_equity.
        drawdown, loss = self._observe(state, portfolio.equity, draft.now_ms, params)
        self._add_state_checks(draft, state, params, drawdown, loss)
        decision = entries.decide_entry(
            draft,
            state,
            params,
            portfolio,
            market,
            mode=self._mode,
            signal_id=signal_id,
            fee_gate=self._fee_edge,
            sizer=self._size_entry,
        )
        if decision.approved:
            self._note_approved_entry(state, decision.intent, draft.now_ms)
        return decision

    def _fee_edge(
        self, draft: DecisionDraft, params: RiskParams, market: MarketInfo
    ) -> Rejection | None:
        """The fee-adjusted edge gate at this manager's execution mode."""
        return entries.fee_edge(draft, params, market, self._execution_mode)

    def _size_entry(
        self,
        draft: DecisionDraft,
        params: RiskParams,
        portfolio: PortfolioState,
        exposure: Decimal,
        market: MarketInfo,
    ) -> Decimal | Rejection:
        """The entry size at this manager's execution mode (fees in the cash cap)."""
        return entries.size_entry(draft, params, portfolio, exposure, market, self._execution_mode)

    # ---- records -----------------------------------------------------------------------------

    def _store(
        self, decision: RiskDecision, version: int | None, signal_id: int | None
    ) -> RiskDecision:
        """Store the decision (when a repository is given) and link the intent to its row."""
        level = "INFO" if decision.approved else "DEBUG"
        logger.log(
            level,
            "risk {} {} {}: {} {}",
            decision.reason_code,
            decision.side,  # a StrEnum formats as its value ("buy")
            decision.symbol,
            decision.message,
            "; ".join(decision.adjustments),
        )
        if self._decisions is None:
            return decision
        decision_id = self._decisions.add(
            self._mode,
            decision,
            signal_id=signal_id,
            params_version=version,
            created_at=decision.timestamp,
        )
        if decision.intent is None:
            return decision
        intent = dataclasses.replace(decision.intent, risk_decision_id=decision_id)
        return dataclasses.replace(decision, intent=intent)

    def _add_state_checks(
        self,
        draft: DecisionDraft,
        state: RiskState,
        params: RiskParams,
        drawdown: Decimal | None,
        loss: Decimal | None,
    ) -> None:
        """Record the state's figures; ``drawdown`` and ``loss`` as just observed, when they were
        (the same figures: marking equity measures them, and they are not measured twice)."""
        checks = draft.checks
        equity = checks["equity"]
        if drawdown is None:
            drawdown = tracking.drawdown_percent(state.peak_equity, equity)
        if loss is None:
            loss = tracking.daily_loss_percent(state.day_start_equity, equity)
        checks["peak_equity"] = state.peak_equity
        checks["drawdown_percent"] = drawdown
        checks["max_drawdown_percent"] = params.max_drawdown_percent
        checks["day_start_equity"] = state.day_start_equity
        checks["daily_loss_percent"] = loss
        checks["trades_today"] = state.trades_today

    def _note_approved_entry(self, state: RiskState, intent: OrderIntent, now: int) -> None:
        """Count an approved entry at once (conservative: an order in flight is a trade)."""
        state.trades_today += 1
        state.pending_entries[intent.symbol] = now
        state.pending_costs[intent.symbol] = intent.amount * intent.price
        state.last_entry_ms[intent.symbol] = now
        self._state.save(state, ("day", "symbols"))

    def _observe(
        self, state: RiskState, equity: Decimal, at_ms: int, params: RiskParams
    ) -> tuple[Decimal | None, Decimal | None]:
        """Mark equity: save what changed, announce what tripped; the drawdowns measured."""
        changed, events, drawdown, loss = tracking.observe_equity(state, equity, at_ms, params)
        if changed:
            self._state.save(state, changed)
        for event in events:
            self._emit(event)
        return drawdown, loss

    def _emit(self, event: RiskEvent) -> None:
        """Log, store and announce an event; a failure here never undoes the state change."""
        logger.warning("risk event {}: {}", event.kind.value, event.message)
        try:
            if self._event_log is not None:
                level = "info" if event.kind in CLEARED_KINDS else "critical"
                self._event_log.add(
                    self._mode,
                    event.kind.value,
                    event.message,
                    level=level,
                    source="risk",
                    details={**event.details, "flatten": event.flatten},
                    created_at=event.at_ms,
                )
            if self._on_event is not None:
                self._on_event(event)
        except Exception:  # an alert failure must not undo a tripped breaker
            logger.exception("risk event delivery failed for {}", event.kind.value)

    # ---- what the rest of the bot tells the manager ------------------------------------------

    def update_equity(self, equity: Decimal | float, at_ms: int) -> None:
        """Record marked-to-market equity (cash + open positions at the last price).

        Tracks the peak and the UTC day's starting equity; trips the drawdown breaker and the
        daily kill-switch when their limits are reached.
        """
        with self._lock:
            _, params = self._params.current()
            self._observe(self._state.load(), to_decimal(equity), at_ms, params)

    def record_entry(self, symbol: str, at_ms: int) -> None:
        """An entry filled at ``at_ms`` (pass the position's open time where known).

        It counts toward today's trades unless its approval already did, it was on an earlier
        UTC day, or this same entry (symbol and time) was recorded before — so re-reporting
        open positions after a restart does not inflate the daily counter.
        """
        with self._lock:
            state = self._state.load()
            now = _later(at_ms, self._clock.now_ms())
            # tracking.utc_day inlined (here and in record_trade_closed): runs for every trade
            if state.day is None or now // _DAY_MS > state.day:
                tracking.roll_day(state, now, None)
            state.pending_costs.pop(symbol, None)
            approved = state.pending_entries.pop(symbol, None) is not None
            seen = state.last_entry_ms.get(symbol) == at_ms
            if not approved and not seen and at_ms // _DAY_MS == state.day:
                state.trades_today += 1
            state.last_entry_ms[symbol] = _later(at_ms, state.last_entry_ms.get(symbol, 0))
            self._state.save(state, _DAY_AND_SYMBOLS)

    def cancel_entry(self, symbol: str) -> None:
        """An approved entry will not fill (refused or cancelled): free its slot and exposure.

        It still counts toward today's trades and the symbol's cooldown.
        """
        with self._lock:
            state = self._state.load()
            if state.pending_entries.pop(symbol, None) is not None:
                state.pending_costs.pop(symbol, None)
                self._state.save(state, ("day",))

    def release_orphaned_entries(self, held: set[str]) -> list[str]:
        """At start-up, after reconciliation: release approved entries of symbols with no
        position (``held``: the symbols that have one). The process that approved them died
        before recording their position and order, so no order exists; left pending they would
        reject the symbol's next candidates as ``ALREADY_IN_POSITION`` for
        ``pending_entry_minutes``. An approval released is not a trade (see
        :func:`.rules.release_entry`). Returns the symbols released.
        """
        with self._lock:
            state = self._state.load()
            orphans = rules.orphaned_entries(state, held)
            if not orphans:
                return []
            for symbol in orphans:
                rules.release_entry(state, symbol)
            self._state.save(state, _DAY_AND_SYMBOLS)
        logger.warning("risk: approved entries with no order released: {}", ", ".join(orphans))
        return orphans

    def record_trade_closed(self, symbol: str, pnl: Decimal | float, at_ms: int) -> None:
        """A position closed at ``at_ms`` with realised ``pnl`` (quote).

        A loss starts the longer cooldown. The PnL adds to today's figure only for a close on
        this UTC day, and only once for the same symbol and time.
        """
        with self._lock:
            state = self._state.load()
            now = _later(at_ms, self._clock.now_ms())
            if state.day is None or now // _DAY_MS > state.day:
                tracking.roll_day(state, now, None)
            profit = to_decimal(pnl)
            seen = state.last_exit_ms.get(symbol) == at_ms
            if not seen and at_ms // _DAY_MS == state.day:
                state.realized_pnl_today += profit
            state.pending_entries.pop(symbol, None)
            state.pending_costs.pop(symbol, None)
            state.last_exit_ms[symbol] = _later(at_ms, state.last_exit_ms.get(symbol, 0))
            if profit < 0:
                state.last_loss_ms[symbol] = _later(at_ms, state.last_loss_ms.get(symbol, 0))
            _forget_old(state, now)
            self._state.save(state, _DAY_AND_SYMBOLS)

    def resume(self, source: str) -> bool:
        """Clear a tripped drawdown breaker (only); False when it was not tripped.

        See :meth:`clear`, which also clears the daily kill-switch.
        """
        return BREAKER in self.clear(source, kill_switch=False)

    def clear(self, source: str, *, breaker: bool = True, kill_switch: bool = True) -> list[str]:
        """Clear the tripped drawdown breaker and/or daily kill-switch; what was cleared.

        ``source`` says who (``cli:alice``, ``web:session``); it and the time are stored in the
        state's ``clears`` section and in a ``*_cleared`` event. The peak (breaker) or the day's
        starting equity (kill-switch) restarts at the last equity seen, so the next mark does
        not trip it again at once. A trading loop in another process reads the clear on its
        next decision (and re-applies it if a save of its own crossed this one). Returns ``[]``
        and changes nothing when neither asked-for switch is tripped. Trading's pause state is
        a different thing and is not touched.
        """
        with self._lock:
            state = self._state.load()
            now = self._clock.now_ms()
            tripped_breaker, tripped_kill = tracking.trips(state, now)
            who = (source or "unknown")[:64]
            cleared: list[str] = []
            # each time strictly later than the previous clear, so no clear looks absorbed
            if breaker and tripped_breaker:
                state.breaker_cleared_at = _later(now, (state.breaker_cleared_at or 0) + 1)
                state.breaker_cleared_by = who
                cleared.append(BREAKER)
            if kill_switch and tripped_kill:
                state.kill_switch_cleared_at = _later(now, (state.kill_switch_cleared_at or 0) + 1)
                state.kill_switch_cleared_by = who
                cleared.append(KILL_SWITCH)
            if not cleared:
                return []
            self._state.save(state, ("clears",))  # the request first: it alone must survive
            self._state.save(state, tracking.absorb_clears(state, None))
            for name in cleared:
                self._emit(_cleared_event(name, state, who))
            return cleared

    def status(self) -> dict[str, Any]:
        """Breaker, kill-switch, daily counters and cooldowns, for the dashboard and health."""
        with self._lock:
            version, params = self._params.current()
            return build_status(
                self._mode, version, params, self._state.load(), self._clock.now_ms()
            )


BREAKER = "breaker"
KILL_SWITCH = "kill_switch"


def _cleared_event(name: str, state: RiskState, who: str) -> RiskEvent:
    """The event of a manual clear (``details.by`` says who, ``details.baseline`` from what)."""
    if name == BREAKER:
        kind, at, base = RiskEventKind.BREAKER_CLEARED, state.breaker_cleared_at, state.peak_equity
        text = f"Drawdown breaker cleared by {who}; the peak restarts at {base}"
    else:
        kind, at, base = (
            RiskEventKind.KILL_SWITCH_CLEARED,
            state.kill_switch_cleared_at,
            state.day_start_equity,
        )
        text = f"Daily loss kill-switch cleared by {who}; today's loss is measured from {base}"
    details = {"by": who, "cleared_at": at, "baseline": base}
    return RiskEvent(kind, text, at or 0, details=details)


def _later(a: int, b: int) -> int:
    """``max(a, b)`` of two times (the builtin parses keyword arguments: several times dearer)."""
    return a if a >= b else b


def _forget_old(state: RiskState, now: int) -> None:
    """Drop trade times too old to matter, so the stored state stays small."""
    horizon = now - _FORGET_AFTER_MS
    for times in (state.last_entry_ms, state.last_exit_ms, state.last_loss_ms):
        # runs on every close: usually nothing is that old, which min() (in C) tells at once
        if times and min(times.values()) < horizon:
            for symbol in [s for s, t in times.items() if t < horizon]:
                del times[symbol]
