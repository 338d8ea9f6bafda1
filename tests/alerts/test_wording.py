"""Alerts that say what happened (issue 18 item 17, alerts part): an advisor skip (cooldown,
budget) is not a failure, a title carries one PAPER/LIVE tag, and money is printed with the
decimals its currency uses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kmg_autotrader.alerts import AlertEvent, format_alert
from kmg_autotrader.alerts.messages import money
from kmg_autotrader.domain import Mode
from kmg_autotrader.storage.repositories import Repositories
from tests.alerts.test_service import make


@pytest.mark.db
async def test_advisor_skips_raise_no_alert_and_failures_still_do(repos: Repositories) -> None:
    service, notifier, _ = make(repos)
    service.start()
    # what the bot sends for every abstention: reason = the advisor's fallback
    for fallback, detail in [
        ("cooldown", "BTC/USDT was asked about less than 15 min ago"),
        ("budget_exhausted", "2 of 2 requests in the last hour"),
        ("advisor_off", "ADVISOR_MODE is off (rules only)"),
    ]:
        assert not service.send("llm_failure", reason=fallback, symbol="BTC/USDT", detail=detail)
    assert service.send("llm_failure", reason="unreachable", symbol="BTC/USDT", detail="HTTP 500")
    await service.stop()
    assert [m.title for m in notifier.messages] == ["[PAPER] Advisor failure BTC/USDT: unreachable"]
    assert [r["event"] for r in repos.alerts.recent(Mode.PAPER)] == ["llm_failure"]


@pytest.mark.parametrize(
    ("mode", "title", "expected"),
    [
        ("paper", "[PAPER] KMG Autotrader started", "[PAPER] KMG Autotrader started"),
        ("live", "[LIVE]  KMG Autotrader started", "[LIVE] KMG Autotrader started"),
        ("paper", "[LIVE] started", "[PAPER] started"),  # the service's own mode wins
        ("paper", "KMG Autotrader started", "[PAPER] KMG Autotrader started"),
    ],
)
def test_a_tagged_title_is_not_tagged_twice(mode: str, title: str, expected: str) -> None:
    message = format_alert(AlertEvent.SYSTEM, mode, title=title, message="symbols: BTC/USDT")
    assert message.title == expected
    untitled = format_alert(AlertEvent.SYSTEM, mode, message=title)
    assert untitled.title == expected


async def test_the_runtimes_start_alert_has_one_tag() -> None:
    service, notifier, _ = make()
    service.start()
    service.send("system", title="[PAPER] KMG Autotrader started", message="symbols: BTC/USDT")
    await service.stop()
    assert [m.title for m in notifier.messages] == ["[PAPER] KMG Autotrader started"]


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (Decimal("0.06412345"), "USDT", "0.06 USDT"),
        (Decimal("1234.5"), "USD", "1,234.5 USD"),
        (Decimal("0.0012345"), "USDT", "0.0012 USDT"),  # a tiny fee keeps 2 significant digits
        (Decimal("0.00004567"), "BNB", "0.00004567 BNB"),
        (Decimal("0.025617280"), "BTC", "0.02561728 BTC"),
        (0, "EUR", "0 EUR"),
        (None, "USDT", "? USDT"),
    ],
)
def test_money(value: Decimal | int | None, currency: str, text: str) -> None:
    assert money(value, currency) == text


def test_fees_and_amounts_print_like_money() -> None:
    filled = format_alert(
        AlertEvent.ORDER_FILLED,
        Mode.PAPER,
        symbol="BTC/USDT",
        side="buy",
        amount=Decimal("0.001"),
        price=Decimal("64123.45"),
        fee=Decimal("0.06412345"),
    )
    assert filled.body.splitlines() == [
        "Bought 0.001 BTC @ 64,123.45 USDT = 64.12 USDT",
        "Fee: 0.06 USDT",  # was 0.06412345 USDT
    ]
    in_bnb = format_alert(
        AlertEvent.ORDER_FILLED,
        Mode.PAPER,
        symbol="ETH/BTC",
        side="sell",
        amount=Decimal("0.5"),
        price=Decimal("0.05123456"),
        fee=Decimal("0.00004567"),
        fee_currency="BNB",
    )
    assert in_bnb.body.splitlines() == [
        "Sold 0.5 ETH @ 0.05123456 BTC = 0.02561728 BTC",  # was "= 0.03 BTC"
        "Fee: 0.00004567 BNB",
    ]
    exited = format_alert(
        AlertEvent.POSITION_EXITED,
        Mode.LIVE,
        symbol="ETH/BTC",
        amount=1,
        entry_price=Decimal("0.05"),
        exit_price=Decimal("0.05012345"),
        pnl=Decimal("0.00012345"),
        fees=Decimal("0.0001002469"),
    )
    assert exited.title == "[LIVE] Exit ETH/BTC +0.00012345 BTC"  # was "+0 BTC"
    assert "Fees: 0.00010025 BTC" in exited.body.splitlines()
    usdt_exit = format_alert(
        AlertEvent.POSITION_EXITED,
        Mode.PAPER,
        symbol="BTC/USDT",
        amount=Decimal("0.001"),
        entry_price=64000,
        exit_price=64500,
        pnl=Decimal("0.37123456"),
        fees=Decimal("0.12878544"),
    )
    assert usdt_exit.title == "[PAPER] Exit BTC/USDT +0.37 USDT"
    assert "Fees: 0.13 USDT" in usdt_exit.body.splitlines()  # was 0.12878544 USDT
    daily = format_alert(
        AlertEvent.DAILY_SUMMARY,
        Mode.PAPER,
        day="2026-12-01",
        pnl=Decimal("0.0021"),
        trades=3,
        fees=Decimal("0.00053"),
        equity=Decimal("1.0021"),
        currency="BTC",
    )
    assert daily.body.splitlines()[:1] + daily.body.splitlines()[2:] == [
        "PnL: +0.0021 BTC",
        "Fees: 0.00053 BTC",  # was 0 BTC
        "Equity: 1.0021 BTC",
    ]
