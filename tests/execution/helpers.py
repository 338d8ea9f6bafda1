"""Shared builders for execution tests."""

from __future__ import annotations

from decimal import Decimal

from kmg_autotrader.domain import MarketInfo, Mode, OrderIntent, Side
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.execution.manager import ExecutionConfig, ExecutionManager
from kmg_autotrader.execution.orders import RetrySettings
from kmg_autotrader.execution.paper import PaperEngine, PaperExchange, PaperSettings
from kmg_autotrader.execution.ports import TradingStore
from kmg_autotrader.execution.store_memory import MemoryStore

BTC = MarketInfo(
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    amount_step=Decimal("0.00001"),
    price_step=Decimal("0.01"),
    min_amount=Decimal("0.00001"),
    min_cost=Decimal("5"),
)
MARKETS = {"BTC/USDT": BTC}
NO_WAIT = RetrySettings(
    create_attempts=3, lookup_attempts=2, initial_wait=0, max_wait=0, absent_window_s=0
)


def engine(
    *, clock: SimulatedClock | None = None, usdt: str = "10000", **settings: object
) -> PaperEngine:
    """A paper engine with 10,000 USDT and BTC/USDT."""
    return PaperEngine(
        MARKETS,
        settings=PaperSettings(**settings),  # type: ignore[arg-type]
        clock=clock or SimulatedClock(1_000),
        balances={"USDT": Decimal(usdt)},
    )


def intent(
    amount: str = "0.1",
    price: str = "20000",
    *,
    side: Side = Side.BUY,
    sl: str | None = "19000",
    tp: str | None = "22000",
    created_at: int = 1_000,
    mode: Mode = Mode.PAPER,
) -> OrderIntent:
    """A BTC/USDT intent."""
    return OrderIntent(
        mode=mode,
        symbol="BTC/USDT",
        side=side,
        amount=Decimal(amount),
        price=Decimal(price),
        stop_loss=Decimal(sl) if sl else None,
        take_profit=Decimal(tp) if tp else None,
        created_at=created_at,
        reason="test",
    )


def manager(
    exchange: PaperExchange,
    *,
    store: TradingStore | None = None,
    clock: SimulatedClock,
    **config: object,
) -> ExecutionManager:
    """A manager over ``exchange`` with no retry waits."""
    return ExecutionManager(
        exchange,
        store or MemoryStore(Mode.PAPER),
        clock=clock,
        config=ExecutionConfig(retry=NO_WAIT, **config),  # type: ignore[arg-type]
    )


class FlakyExchange(PaperExchange):
    """A paper exchange that can time out around creates, look-ups and cancels."""

    def __init__(self, engine: PaperEngine) -> None:
        super().__init__(engine)
        self.timeouts_after_accept = 0
        self.timeouts_before_accept = 0
        self.lookup_failures = 0
        self.creates = 0
        self.fill_during_cancel: Decimal | None = None
        self.hidden_lookups = 0  # look-ups that wrongly say "unknown" (eventual consistency)

    async def create_order(self, *args: object, **kwargs: object) -> dict[str, object]:
        from kmg_autotrader.exchange.errors import AmbiguousOrderError

        self.creates += 1
        if self.timeouts_before_accept:
            self.timeouts_before_accept -= 1
            raise AmbiguousOrderError("timed out before the exchange saw it")
        result = await super().create_order(*args, **kwargs)  # type: ignore[arg-type]
        if self.timeouts_after_accept:
            self.timeouts_after_accept -= 1
            raise AmbiguousOrderError("timed out after the exchange accepted it")
        return result

    async def fetch_order_by_client_id(
        self, client_order_id: str, symbol: str
    ) -> dict[str, object]:
        from kmg_autotrader.exchange.errors import TransientExchangeError

        if self.lookup_failures:
            self.lookup_failures -= 1
            raise TransientExchangeError("look-up timed out")
        if self.hidden_lookups:
            from kmg_autotrader.exchange.errors import OrderNotFoundError

            self.hidden_lookups -= 1
            raise OrderNotFoundError("not visible yet")
        return await super().fetch_order_by_client_id(client_order_id, symbol)

    async def cancel_order(self, order_id: str, symbol: str) -> dict[str, object]:
        if self.fill_during_cancel is not None:  # the market trades through just before
            price, self.fill_during_cancel = self.fill_during_cancel, None
            self.engine.on_price(symbol, price)
        return await super().cancel_order(order_id, symbol)
