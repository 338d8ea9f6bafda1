"""Formatters: short, clear, tagged PAPER/LIVE, with the numbers that matter."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kmg_autotrader.alerts import AlertEvent, Severity, format_alert
from kmg_autotrader.alerts.messages import FORMATTERS, MAX_BODY, num, signed
from kmg_autotrader.domain import Mode


def test_every_event_has_a_formatter() -> None:
    assert set(FORMATTERS) == set(AlertEvent)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (64000.5, "64,000.5"),
        (Decimal("0.012500"), "0.0125"),
        (0.1 + 0.2, "0.3"),
        (3, "3"),
        (None, "?"),
        ("abc", "abc"),
    ],
)
def test_num(value: object, text: str) -> None:
    assert num(value) == text  # type: ignore[arg-type]


def test_signed() -> None:
    assert signed(12.345) == "+12.35"  # half-up, as people round money
    assert signed(-4) == "-4"
    assert signed(0) == "0"


def test_order_filled() -> None:
    message = format_alert(
        AlertEvent.ORDER_FILLED,
        Mode.LIVE,
        symbol="BTC/USDT",
        side="sell",
        amount=Decimal("0.5"),
        price=Decimal("64000"),
        fee=Decimal("32"),
        order_id="kmg-1",
    )
    assert message.title == "[LIVE] SELL filled BTC/USDT"
    assert message.body.splitlines() == [
        "Sold 0.5 BTC @ 64,000 USDT = 32,000 USDT",
        "Fee: 32 USDT",
        "Order: kmg-1",
    ]
    assert message.dedupe_key == "order_filled:kmg-1"
    assert message.severity is Severity.SUCCESS


def test_position_exited_loss() -> None:
    message = format_alert(
        AlertEvent.POSITION_EXITED,
        Mode.PAPER,
        symbol="ETH/USDT",
        amount=1,
        entry_price=3000,
        exit_price=2950,
        pnl=-52.1,
        pnl_pct=-1.74,
        reason="stop loss",
    )
    assert message.title == "[PAPER] Exit ETH/USDT -52.1 USDT (-1.74%)"
    assert "1 ETH: 3,000 → 2,950 USDT" in message.body
    assert "Reason: stop loss" in message.body
    assert message.severity is Severity.WARNING


@pytest.mark.parametrize(
    ("event", "fields", "title"),
    [
        (
            AlertEvent.TRADE_ERROR,
            {"symbol": "BTC/USDT", "error": "InsufficientFunds", "action": "entry"},
            "[PAPER] Trade error BTC/USDT",
        ),
        (
            AlertEvent.LLM_FAILURE,
            {"reason": "invalid_json", "symbol": "BTC/USDT", "fallback": "rules only"},
            "[PAPER] Advisor failure BTC/USDT: invalid_json",
        ),
        (
            AlertEvent.RISK_REJECTION,
            {"symbol": "BTC/USDT", "side": "buy", "reason_code": "max_exposure"},
            "[PAPER] Risk rejected BUY BTC/USDT: max_exposure",
        ),
        (
            AlertEvent.BREAKER_TRIPPED,
            {"breaker": "daily_loss", "reason": "-3% today", "until_ms": 1_700_000_000_000},
            "[PAPER] Risk breaker tripped: daily_loss",
        ),
        (AlertEvent.KILL_SWITCH, {"reason": "manual"}, "[PAPER] KILL SWITCH: trading stopped"),
        (
            AlertEvent.FEED_DEGRADED,
            {"feed": "websocket", "status": "rest_fallback"},
            "[PAPER] Data feed websocket: rest_fallback",
        ),
        (
            AlertEvent.WEEKLY_SUMMARY,
            {"week": "2026-W48", "pnl": -10, "trades": 7, "wins": 3, "losses": 4},
            "[PAPER] Weekly PnL 2026-W48: -10 USDT",
        ),
    ],
)
def test_titles(event: AlertEvent, fields: dict[str, object], title: str) -> None:
    message = format_alert(event, Mode.PAPER, **fields)
    assert message.title == title
    assert message.event is event
    assert message.body


def test_breaker_body_and_summary_lines() -> None:
    breaker = format_alert(
        AlertEvent.BREAKER_TRIPPED,
        "paper",
        breaker="daily_loss",
        reason="-3% today",
        until_ms=1_700_000_000_000,
    )
    assert breaker.body == "-3% today\nPaused until 2023-11-14T22:13:20Z"
    daily = format_alert(
        AlertEvent.DAILY_SUMMARY,
        "paper",
        day="2026-11-23",
        pnl=25,
        pnl_pct=0.25,
        trades=5,
        wins=3,
        losses=2,
        equity=10025,
        max_drawdown_pct=1.2,
    )
    assert daily.body.splitlines() == [
        "PnL: +25 USDT (+0.25%)",
        "Trades: 5 (3W/2L)",
        "Equity: 10,025 USDT",
        "Max drawdown: 1.2%",
    ]
    assert daily.dedupe_key == "daily_summary:2026-11-23"


def test_long_bodies_are_cut() -> None:
    message = format_alert(AlertEvent.TRADE_ERROR, "live", error="x" * 5000)
    assert len(message.body) <= MAX_BODY


def test_bad_fields_raise_for_the_service_to_catch() -> None:
    with pytest.raises(TypeError):
        format_alert(AlertEvent.ORDER_FILLED, "paper", symbol="BTC/USDT")
