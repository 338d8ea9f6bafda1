"""Mental stop-loss / take-profit and the synthetic OCO, checked on every price update.

For ``MARKET_ONLY`` positions both levels are mental: crossing either sends a market exit.
For ``LIMIT_BRACKET`` positions the take-profit rests on the exchange as a limit and the stop
is mental: take-profit fills shrink the position (the stop then covers only what is left);
a stop hit cancels the take-profit (recording any fill that lands meanwhile) and sells only
the remainder. Every exit goes through :meth:`ExecutionManager.exit_position`, which claims
the position atomically, so two processes never both exit it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from loguru import logger

from kmg_autotrader.domain import Position
from kmg_autotrader.exchange.errors import ExchangeAdapterError
from kmg_autotrader.execution.book import OPENING
from kmg_autotrader.execution.errors import UnresolvedOrderError
from kmg_autotrader.execution.manager import (
    BACKING_OFF,
    TP_ORDER,
    ExecutionManager,
    ExecutionReport,
)
from kmg_autotrader.portfolio.positions import trailed_stop


@dataclass(frozen=True, slots=True)
class ExitSignal:
    """An exit the tracker started (or tried to)."""

    position_id: int
    reason: str
    price: Decimal
    report: ExecutionReport | None
    error: str | None = None


class PositionTracker:
    """Watches open positions of one store against prices and exits them when due."""

    def __init__(self, manager: ExecutionManager, *, tp_sync_interval_ms: int = 30_000) -> None:
        self.manager = manager
        self.store = manager.store
        self.tp_sync_interval_ms = tp_sync_interval_ms
        self._last_tp_sync: dict[int, int] = {}

    async def on_price(
        self,
        symbol: str,
        price: Decimal,
        *,
        low: Decimal | None = None,
        high: Decimal | None = None,
    ) -> list[ExitSignal]:
        """Check every open position of ``symbol`` at ``price`` (a tick). A candle can pass
        its ``low``/``high``: the stop is checked against the low, the take-profit the high."""
        low = price if low is None else low
        high = price if high is None else high
        signals: list[ExitSignal] = []
        for position in self.store.open_positions(symbol):
            if position.id is None or position.extra.get("state") == OPENING:
                continue
            signal = await self._check(position, price, low, high)
            if signal is not None:
                signals.append(signal)
        return signals

    async def _check(
        self, position: Position, price: Decimal, low: Decimal, high: Decimal
    ) -> ExitSignal | None:
        assert position.id is not None
        pid = position.id
        tp_coid = position.extra.get(TP_ORDER)
        if tp_coid and self._tp_due(pid, high, position):
            try:
                await self.manager.orders.sync(tp_coid)  # records TP fills, shrinks the position
            except ExchangeAdapterError as exc:
                logger.warning("take-profit {} sync failed: {}", tp_coid, exc)
            refreshed = self.store.get_position(pid)
            if refreshed is None or refreshed.closed_at is not None:
                return None
            position = refreshed
        if position.stop_loss is not None and low <= position.stop_loss:
            return await self._exit(pid, "stop_loss", min(price, position.stop_loss))
        if not tp_coid and position.take_profit is not None and high >= position.take_profit:
            return await self._exit(pid, "take_profit", max(price, position.take_profit))
        # trail after the checks: within a candle the high may come after the low
        self._trail(position, high)
        return None

    def _tp_due(self, pid: int, high: Decimal, position: Position) -> bool:
        now = self.manager.clock.now_ms()
        crossed = position.take_profit is not None and high >= position.take_profit
        if crossed or now - self._last_tp_sync.get(pid, 0) >= self.tp_sync_interval_ms:
            self._last_tp_sync[pid] = now
            return True
        return False

    def _trail(self, position: Position, high: Decimal) -> Position:
        if position.trailing_stop_pct is None:
            return position
        highest = max(position.highest_price or high, high)
        stop = trailed_stop(position.stop_loss, highest, position.trailing_stop_pct)
        if highest != position.highest_price or stop != position.stop_loss:
            assert position.id is not None
            self.store.update_position(position.id, highest_price=highest, stop_loss=stop)
            refreshed = self.store.get_position(position.id)
            return refreshed if refreshed is not None else position
        return position

    async def _exit(self, pid: int, reason: str, price: Decimal) -> ExitSignal | None:
        try:
            report = await self.manager.exit_position(pid, reason, intended_price=price)
        except (ExchangeAdapterError, UnresolvedOrderError) as exc:
            logger.error("exit of position {} ({}) failed: {}", pid, reason, exc)
            return ExitSignal(pid, reason, price, None, str(exc))
        if report.status == "skipped" and report.message.startswith(
            ("already exiting", BACKING_OFF)
        ):
            return None  # an exit is under way (ours or another process's), or waits
        if report.status == "rejected":  # recorded and backed off by the manager; say so
            return ExitSignal(pid, reason, price, report, report.message)
        return ExitSignal(pid, reason, price, report)
