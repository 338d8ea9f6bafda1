"""The domain's regenerated ``__init__`` (:func:`fast_init`) behaves as the dataclass's own."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from kmg_autotrader import domain
from kmg_autotrader.domain import Mode, Order, OrderStatus, OrderType, Position, Side
from kmg_autotrader.domain.fast_init import fast_init

DOMAIN_VALUES = [
    obj for obj in vars(domain).values() if isinstance(obj, type) and dataclasses.is_dataclass(obj)
]


def _reference(cls: type) -> type:
    """The same fields in a plain frozen slotted dataclass (dataclasses' own ``__init__``)."""
    specs = [
        (f.name, f.type, field(default=f.default, default_factory=f.default_factory))
        for f in dataclasses.fields(cls)
    ]
    return dataclasses.make_dataclass(cls.__name__, specs, frozen=True, slots=True)


def test_every_domain_value_has_the_fast_init() -> None:
    assert len(DOMAIN_VALUES) >= 13
    for cls in DOMAIN_VALUES:
        assert cls.__init__.__code__.co_filename == "<string>"
        assert "_set_" in " ".join(cls.__init__.__code__.co_names), cls


@pytest.mark.parametrize("cls", DOMAIN_VALUES, ids=lambda c: c.__name__)
def test_signature_matches_the_dataclass_one(cls: type) -> None:
    ours = inspect.signature(cls.__init__).parameters
    theirs = inspect.signature(_reference(cls).__init__).parameters
    assert list(ours) == list(theirs)
    for name, param in ours.items():
        other = theirs[name]
        assert param.kind == other.kind
        if repr(other.default) == "<factory>":
            assert repr(param.default) == "<factory>"
        else:
            assert param.default is other.default or param.default == other.default


def _order(**changes: object) -> Order:
    values: dict[str, object] = {
        "mode": Mode.PAPER,
        "client_order_id": "P-1",
        "symbol": "BTC/USDT",
        "side": Side.BUY,
        "type": OrderType.MARKET,
        "amount": Decimal("0.5"),
        "status": OrderStatus.OPEN,
        "created_at": 1,
    }
    values.update(changes)
    return Order(**values)  # type: ignore[arg-type]


def test_values_defaults_equality_and_hash_are_the_dataclass_ones() -> None:
    order = _order(price=Decimal("10"))
    reference = _reference(Order)(
        **{f.name: getattr(order, f.name) for f in dataclasses.fields(Order)}
    )
    assert dataclasses.astuple(order) == dataclasses.astuple(reference)
    assert order.filled == Decimal(0) and order.purpose == "entry" and order.error is None
    assert order == _order(price=Decimal("10"))
    assert hash(order) == hash(_order(price=Decimal("10")))
    assert order != _order(price=Decimal("11"))
    assert repr(order).startswith("Order(mode=")
    positional = Order(
        Mode.PAPER,
        "P-1",
        "BTC/USDT",
        Side.BUY,
        OrderType.MARKET,
        Decimal("0.5"),
        OrderStatus.OPEN,
        1,
        Decimal("10"),
    )
    assert positional == order


def test_default_factories_give_each_instance_its_own_value() -> None:
    a = Position(Mode.PAPER, "BTC/USDT", Decimal(1), Decimal(2), 0)
    b = Position(Mode.PAPER, "BTC/USDT", Decimal(1), Decimal(2), 0)
    assert a.extra == {} and a.extra is not b.extra
    given = {"state": "open"}
    assert Position(Mode.PAPER, "X/Y", Decimal(1), Decimal(2), 0, extra=given).extra is given


def test_still_frozen_and_argument_errors_unchanged() -> None:
    order = _order()
    with pytest.raises(dataclasses.FrozenInstanceError):
        order.amount = Decimal(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        _order(bogus=1)
    with pytest.raises(TypeError):
        Order(Mode.PAPER, "P-1")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values"):
        Order(Mode.PAPER, mode=Mode.PAPER)  # type: ignore[call-arg,misc]


def test_replace_copy_and_pickle_work() -> None:
    order = _order()
    assert dataclasses.replace(order, amount=Decimal(2)).amount == Decimal(2)
    assert copy.deepcopy(order) == order
    assert pickle.loads(pickle.dumps(order)) == order


def test_refuses_what_it_does_not_reproduce() -> None:
    @dataclass(frozen=True, slots=True)
    class WithPost:
        x: int

        def __post_init__(self) -> None:
            pass

    @dataclass(slots=True)
    class NotFrozen:
        x: int

    @dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclass(frozen=True, slots=True)
    class KwOnly:
        x: int = field(kw_only=True)

    for cls in (WithPost, NotFrozen, NoSlots, KwOnly):
        with pytest.raises(TypeError):
            fast_init(cls)
