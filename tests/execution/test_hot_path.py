"""The shortcuts on the backtest's hot path behave exactly like what they replace."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
from decimal import Decimal

import pytest

from kmg_autotrader.domain import Mode, Order, OrderStatus, OrderType, Position, Side
from kmg_autotrader.execution import store_memory
from kmg_autotrader.execution.paper import MemoryLedger, PaperEngine


def _order() -> Order:
    return Order(
        mode=Mode.PAPER,
        client_order_id="kmgp1",
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        amount=Decimal("0.5"),
        status=OrderStatus.PENDING,
        created_at=1,
    )


def _position() -> Position:
    return Position(
        mode=Mode.PAPER,
        symbol="BTC/USDT",
        amount=Decimal(0),
        entry_price=Decimal("100.0"),
        opened_at=1,
        extra={"state": "opening"},
    )


@pytest.mark.parametrize("cls", [Order, Position])
def test_store_records_are_plain_frozen_dataclasses(cls: type) -> None:
    """``_replacer`` relies on this: every field is an init field, nothing runs after init."""
    params = getattr(cls, "__dataclass_params__")  # noqa: B009
    assert params.frozen
    assert not hasattr(cls, "__post_init__")
    assert all(f.init for f in dataclasses.fields(cls))


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"status": OrderStatus.FILLED, "filled": Decimal("0.50"), "updated_at": 7},
        {"average_price": Decimal("101.25"), "fee": Decimal("0.01"), "fee_currency": "USDT"},
        {"error": "boom", "exchange_order_id": "P1"},
    ],
)
def test_replaced_order_equals_dataclasses_replace(values: dict[str, object]) -> None:
    order = _order()
    new = store_memory._replace_order(order, {**values, "not_a_field": 1})
    expected = dataclasses.replace(order, **values)  # type: ignore[arg-type]
    assert type(new) is Order
    assert new == expected
    assert all(getattr(new, n) is getattr(expected, n) for n in store_memory._ORDER_NAMES)
    assert order == _order()  # the original is untouched


def test_replaced_position_equals_dataclasses_replace() -> None:
    position = _position()
    values = {"amount": Decimal("0.5"), "extra": {"state": "open"}, "closed_at": 9, "id": 3}
    new = store_memory._replace_position(position, values)
    assert new == dataclasses.replace(position, **values)  # type: ignore[arg-type]
    assert hash(new.id) == hash(3) and new.extra is values["extra"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.amount = Decimal(1)  # type: ignore[misc]


def test_memory_store_update_keeps_every_other_field() -> None:
    store = store_memory.MemoryStore(Mode.PAPER)
    pid = store.open_position(_position())
    store.add_order(_order(), position_id=pid)
    store.update_order("kmgp1", status="filled", filled=Decimal("0.5"), unknown_field=1)
    order = store.get_order("kmgp1")
    assert order == dataclasses.replace(_order(), status=OrderStatus.FILLED, filled=Decimal("0.5"))
    store.update_position(pid, amount=Decimal("0.5"), exiting=False)
    assert store.get_position(pid) == dataclasses.replace(
        _position(), id=pid, amount=Decimal("0.5")
    )


def test_memory_ledger_session_is_reusable_and_reentrant() -> None:
    ledger = MemoryLedger()
    engine = PaperEngine({}, ledger=ledger)
    with ledger.session(engine, write=True), ledger.session(engine, write=False):
        pass
    with pytest.raises(RuntimeError), ledger.session(engine, write=True):
        raise RuntimeError("propagates")


def test_database_store_is_imported_lazily() -> None:
    """A backtest never needs SQLAlchemy: the execution and risk packages do not import it."""
    code = (
        "import sys, kmg_autotrader.execution, kmg_autotrader.risk;"
        "print('sqlalchemy' in sys.modules, 'alembic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    assert out == ["False", "False"]
    execution = importlib.import_module("kmg_autotrader.execution")
    from kmg_autotrader.execution.store_db import RepositoryStore

    assert execution.RepositoryStore is RepositoryStore
    assert "RepositoryStore" in dir(execution)
    with pytest.raises(AttributeError):
        _ = execution.NoSuchName


def test_orders_for_intent_index_equals_a_scan() -> None:
    """The intent index answers what a scan of every order would, in the same order."""
    store = store_memory.MemoryStore(Mode.PAPER)

    def scan(intent_id: str) -> list[Order]:
        return [o for o in store.orders.values() if o.intent_id == intent_id]

    for i, intent in enumerate(["a", "b", None, "a", "c", "b", "a"]):
        order = dataclasses.replace(_order(), client_order_id=f"kmgp{i}", intent_id=intent)
        store.add_order(order)
    store.update_order("kmgp0", status=OrderStatus.FILLED)  # index kept on other updates
    for intent in ("a", "b", "c", "missing"):
        assert store.orders_for_intent(intent) == scan(intent)
    store.update_order("kmgp5", intent_id="a")  # an order moved to another intent
    store.update_order("kmgp2", intent_id="c")
    for intent in ("a", "b", "c"):
        assert store.orders_for_intent(intent) == scan(intent)
    assert [o.client_order_id for o in store.orders_for_intent("a")] == [
        "kmgp0",
        "kmgp3",
        "kmgp5",
        "kmgp6",
    ]


def test_feed_bar_fills_like_on_bar() -> None:
    """``PaperExchange.feed_bar`` (backtests) is ``on_bar`` without the returned trade dicts."""
    import asyncio

    from kmg_autotrader.domain.clock import SimulatedClock
    from kmg_autotrader.execution.paper import PaperExchange

    from .helpers import engine

    states = []
    for feed in (True, False):
        clock = SimulatedClock(1_000)
        exchange = PaperExchange(engine(clock=clock))
        exchange.on_price("BTC/USDT", Decimal(20000), 900)
        asyncio.run(exchange.create_order("BTC/USDT", "market", "buy", Decimal("0.1")))
        asyncio.run(
            exchange.create_order("BTC/USDT", "limit", "buy", Decimal("0.1"), Decimal(19990))
        )
        clock.set(2_000)
        bar = ("BTC/USDT", 2_000, 20001.5, 20010.0, 19980.25, 20002.0, 12.5)
        if feed:
            assert len(exchange.on_bar(*bar)) == 2
        else:
            assert exchange.feed_bar(*bar) is None
        states.append(exchange.engine.snapshot())
    assert states[0] == states[1]
