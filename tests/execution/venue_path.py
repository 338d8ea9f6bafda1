"""The bot's real LIVE order path on an in-process local venue, for execution tests.

:class:`ExecutionManager` → :class:`OrderClient` → :class:`CcxtExchange` →
:class:`ExchangeAdapter` → a real ccxt ``binance``/``kraken`` class pointed at the venue with
``api_url`` (what ``EXCHANGE_API_URL`` sets). The venue runs a manual clock over the bundled
``btc-usdt`` sample and is the bot's clock too (as ``run_live``'s injectable clock), so tests
are deterministic; its books are the truth the tests compare with.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from kmg_autotrader.domain import Mode, OrderIntent, Side
from kmg_autotrader.exchange import ExchangeAdapter, RetryPolicy
from kmg_autotrader.execution.ccxt_orders import CcxtExchange
from kmg_autotrader.execution.manager import ExecutionConfig, ExecutionManager
from kmg_autotrader.execution.orders import RetrySettings
from kmg_autotrader.execution.ports import TradingStore
from kmg_autotrader.execution.store_memory import MemoryStore
from kmg_autotrader.sample_data import load_sample_set
from kmg_autotrader.venue import AccountSpec, FaultPlan, Venue

if TYPE_CHECKING:
    import pandas as pd

KEY = "execution-venue-key"
SECRET = base64.b64encode(bytes(range(64))).decode()  # Kraken secrets are base64
START_MS = 1_893_456_150_000  # a fixed venue time: the same prices on every run
SYMBOL = "BTC/USDT"
FAST = RetrySettings(
    create_attempts=3, lookup_attempts=3, initial_wait=0.01, max_wait=0.05, absent_window_s=0.05
)


@cache
def _frames() -> dict[str, pd.DataFrame]:
    return load_sample_set("btc-usdt")


class VenueTime:
    """The bot's clock: venue time."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue

    def now_ms(self) -> int:
        """Venue time (ms)."""
        return int(self.venue.clock.now_ms())


@dataclass
class VenuePath:
    """A started venue and the order path on it."""

    venue: Venue
    adapter: ExchangeAdapter
    exchange: CcxtExchange
    manager: ExecutionManager
    store: TradingStore
    clock: VenueTime

    def books(self) -> dict[str, Any]:
        """The venue's books of our account (the truth)."""
        return self.venue.books(KEY)

    def intent(self, amount: str = "0.002", n: int = 1) -> OrderIntent:
        """A LIVE market-priced buy intent at the venue's last price."""
        now = self.clock.now_ms()
        price = self.venue.market.last_price(SYMBOL, now)
        return OrderIntent(
            mode=Mode.LIVE,
            symbol=SYMBOL,
            side=Side.BUY,
            amount=Decimal(amount),
            price=price,
            stop_loss=(price * Decimal("0.5")).quantize(Decimal("0.1")),
            take_profit=None,
            created_at=now + n,
            signal_id=n,
        )


@contextlib.asynccontextmanager
async def venue_path(
    exchange: str = "binance",
    *,
    store: TradingStore | None = None,
    config: ExecutionConfig | None = None,
    adapter_config: dict[str, Any] | None = None,
    exchange_kwargs: dict[str, Any] | None = None,
) -> AsyncIterator[VenuePath]:
    """A venue of ``exchange`` and the bot's order path on it (closed at the end)."""
    venue = Venue(
        exchange,
        _frames(),
        speed=0,
        warmup=200,
        accounts=[AccountSpec(KEY, SECRET, {"USDT": Decimal(1_000_000)})],
        faults=FaultPlan(),
        start_ms=START_MS,
    )
    await venue.start(0)
    adapter = ExchangeAdapter(
        exchange,
        api_key=KEY,
        secret=SECRET,
        api_url=venue.base_url,
        config={"timeout": 1000, "rateLimit": 5, **(adapter_config or {})},
        retry=RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05),
    )
    try:
        await adapter.load_markets()
        port = CcxtExchange(adapter, **(exchange_kwargs or {}))
        clock = VenueTime(venue)
        store = store or MemoryStore(Mode.LIVE)
        manager = ExecutionManager(
            port, store, clock=clock, config=config or ExecutionConfig(retry=FAST)
        )
        yield VenuePath(venue, adapter, port, manager, store, clock)
    finally:
        await adapter.close()
        await venue.stop()
