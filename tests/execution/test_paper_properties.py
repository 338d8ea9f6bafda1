"""Property tests: whatever orders and prices, the paper account stays consistent."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.exchange.errors import ExchangeAdapterError
from kmg_autotrader.execution.fees import SlippageModel

from .helpers import engine

D = Decimal
prices = st.decimals(min_value=D(15000), max_value=D(25000), places=2)
amounts = st.decimals(min_value=D("0.0001"), max_value=D("0.2"), places=5)
actions = st.lists(
    st.tuples(
        st.sampled_from(["market", "limit", "cancel", "tick"]),
        st.sampled_from(["buy", "sell"]),
        amounts,
        prices,
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(actions=actions, fraction=st.sampled_from([D("0.3"), D(1)]))
def test_paper_account_invariants(actions: list[tuple[str, str, D, D]], fraction: D) -> None:
    clock = SimulatedClock(1_000)
    paper = engine(
        clock=clock,
        usdt="5000",
        slippage=SlippageModel(D(3), D(10)),
        max_fill_fraction=fraction,
        volume_participation=None,
    )
    paper.on_price("BTC/USDT", D(20000), 900)
    for step, (kind, side, amount, price) in enumerate(actions):
        clock.set(1_000 + step * 10)
        try:
            if kind == "market":
                paper.create_order("BTC/USDT", "market", side, amount)
            elif kind == "limit":
                paper.create_order("BTC/USDT", "limit", side, amount, price)
            elif kind == "cancel":
                for order in paper.open_orders("BTC/USDT")[:1]:
                    paper.cancel_order(order["id"])
            else:
                paper.on_price("BTC/USDT", price)
        except ExchangeAdapterError:
            pass
        balance = paper.balance()
        for currency in ("USDT", "BTC"):
            assert balance["free"].get(currency, 0) >= 0
            assert balance["used"].get(currency, 0) >= 0
    # used balance is exactly what open orders reserve
    reserved = {"USDT": D(0), "BTC": D(0)}
    for order in paper.orders.values():
        assert order.filled <= order.amount
        assert sum(paper.trades[t].amount for t in order.trade_ids) == order.filled
        if order.status == "open":
            reserved["USDT" if order.side == "buy" else "BTC"] += order.reserved
        else:
            assert order.reserved == 0
    balance = paper.balance()
    assert balance["used"].get("USDT", 0) == reserved["USDT"]
    assert balance["used"].get("BTC", 0) == reserved["BTC"]
    # conservation: every unit of quote and base is accounted for by the trades
    trades = list(paper.trades.values())
    bought = sum((t.amount for t in trades if t.side == "buy"), D(0))
    sold = sum((t.amount for t in trades if t.side == "sell"), D(0))
    spent = sum((t.amount * t.price + t.fee for t in trades if t.side == "buy"), D(0))
    received = sum((t.amount * t.price - t.fee for t in trades if t.side == "sell"), D(0))
    assert balance["total"].get("BTC", D(0)) == bought - sold
    assert balance["total"]["USDT"] == D(5000) - spent + received
