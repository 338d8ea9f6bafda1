"""Message formatters: one small function per event, all returning an :class:`AlertMessage`.

Titles start with one ``[PAPER]``/``[LIVE]`` tag so a paper alert is never mistaken for real
money (a caller's own tag is replaced, never doubled). Bodies are plain text, a few short lines,
with the numbers a reader acts on; money is printed with the decimals its currency uses.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from kmg_autotrader.alerts.events import AlertEvent, AlertMessage, Severity
from kmg_autotrader.domain import Mode
from kmg_autotrader.domain.clock import ms_to_iso

Number = Decimal | float | int | str

MAX_BODY = 1500  # well under Telegram's 4096 and Discord's 2000 limits

#: Currencies counted in cents: fiat and the USD/EUR stablecoins. Anything else (BTC, ETH, BNB…)
#: is a coin whose fees and PnL are fractions of a unit.
CENT_CURRENCIES = frozenset(
    {"USD", "EUR", "GBP", "CHF", "JPY", "AUD", "CAD", "TRY", "BRL"}
    | {"USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDP", "DAI", "PYUSD", "EURC", "EURT"}
)
_TAGS = re.compile(r"^(?:\s*\[(?:PAPER|LIVE)\])+\s*", re.IGNORECASE)


def tag(mode: Mode | str) -> str:
    """``[PAPER]`` or ``[LIVE]``."""
    return f"[{Mode(mode).value.upper()}]"


def titled(mode: Mode | str, text: str) -> str:
    """``text`` behind the mode's tag; a tag the caller already put there is replaced, so a
    title never reads ``[PAPER] [PAPER] …`` (nor shows another mode's tag)."""
    return f"{tag(mode)} {_TAGS.sub('', text)}".rstrip()


def num(value: Number | None, places: int = 8) -> str:
    """A number without float noise or trailing zeros (``64000.5``, ``0.0125``)."""
    if value is None:
        return "?"
    try:
        dec = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    if not dec.is_finite():
        return str(value)
    with contextlib.suppress(ArithmeticError):  # too many digits to quantize: show as is
        dec = dec.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{dec:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def signed(value: Number | None, places: int = 2) -> str:
    """A number with an explicit sign (``+12.3``, ``-4``)."""
    text = num(value, places)
    return text if text.startswith(("-", "?")) or text == "0" else f"+{text}"


def split_symbol(symbol: str) -> tuple[str, str]:
    """``BTC/USDT`` → ``("BTC", "USDT")``; anything else → ``(symbol, "")``."""
    base, _, quote = symbol.partition("/")
    return base, quote.split(":")[0]


def money_places(value: Number | None, currency: str) -> int:
    """Decimals for an amount of ``currency``: 2 for fiat and stablecoins, 8 for coins; a
    non-zero amount too small for that keeps two significant digits (a 0.0012 USDT fee)."""
    places = 2 if currency.upper() in CENT_CURRENCIES else 8
    try:
        dec = Decimal(str(value))
    except (ArithmeticError, ValueError):
        return places
    if dec.is_finite() and dec != 0 and dec.adjusted() < -places:  # would print as 0
        places = min(12, 1 - dec.adjusted())
    return places


def money(value: Number | None, currency: str) -> str:
    """An amount of money: ``0.06 USDT``, ``0.00004567 BNB`` (see :func:`money_places`)."""
    return f"{num(value, money_places(value, currency))} {currency}".strip()


def signed_money(value: Number | None, currency: str) -> str:
    """:func:`money` with an explicit sign (``+12.3 USDT``, ``-0.0004 BTC``)."""
    return f"{signed(value, money_places(value, currency))} {currency}".strip()


def _pct(value: Number | None) -> str:
    return f" ({signed(value, 2)}%)" if value is not None else ""


def _lines(*parts: str | None) -> str:
    body = "\n".join(p for p in parts if p)
    return body if len(body) <= MAX_BODY else body[: MAX_BODY - 1] + "…"


def order_filled(
    mode: Mode | str,
    *,
    symbol: str,
    side: str,
    amount: Number,
    price: Number,
    fee: Number | None = None,
    fee_currency: str | None = None,
    order_id: str | None = None,
    purpose: str | None = None,
) -> AlertMessage:
    """An order (entry, exit, stop…) filled."""
    base, quote = split_symbol(symbol)
    side_text = str(side).upper()
    verb = "Bought" if side_text == "BUY" else "Sold"
    try:
        notional = Decimal(str(amount)) * Decimal(str(price))
    except ArithmeticError:
        notional = None
    return AlertMessage(
        event=AlertEvent.ORDER_FILLED,
        title=titled(mode, f"{side_text} filled {symbol}"),
        body=_lines(
            f"{verb} {num(amount)} {base} @ {num(price)} {quote}".rstrip()
            + (f" = {money(notional, quote)}" if notional is not None else ""),
            f"Fee: {money(fee, fee_currency or quote)}" if fee is not None else None,
            f"Purpose: {purpose}" if purpose else None,
            f"Order: {order_id}" if order_id else None,
        ),
        severity=Severity.SUCCESS,
        dedupe_key=f"order_filled:{order_id}" if order_id else None,
    )


def position_exited(
    mode: Mode | str,
    *,
    symbol: str,
    amount: Number,
    entry_price: Number,
    exit_price: Number,
    pnl: Number,
    pnl_pct: Number | None = None,
    reason: str | None = None,
    fees: Number | None = None,
    position_id: int | str | None = None,
) -> AlertMessage:
    """A position closed; the headline is its realised PnL."""
    base, quote = split_symbol(symbol)
    try:
        won = Decimal(str(pnl)) >= 0
    except ArithmeticError:
        won = False
    return AlertMessage(
        event=AlertEvent.POSITION_EXITED,
        title=titled(mode, f"Exit {symbol} {signed_money(pnl, quote)}{_pct(pnl_pct)}"),
        body=_lines(
            f"{num(amount)} {base}: {num(entry_price)} → {num(exit_price)} {quote}",
            f"PnL: {signed_money(pnl, quote)}{_pct(pnl_pct)}",
            f"Fees: {money(fees, quote)}" if fees is not None else None,
            f"Reason: {reason}" if reason else None,
        ),
        severity=Severity.SUCCESS if won else Severity.WARNING,
        dedupe_key=f"position_exited:{position_id}" if position_id is not None else None,
    )


def trade_error(
    mode: Mode | str,
    *,
    error: str,
    symbol: str | None = None,
    action: str | None = None,
    order_id: str | None = None,
) -> AlertMessage:
    """An order could not be placed, cancelled or reconciled."""
    where = f" {symbol}" if symbol else ""
    return AlertMessage(
        event=AlertEvent.TRADE_ERROR,
        title=titled(mode, f"Trade error{where}"),
        body=_lines(
            f"Action: {action}" if action else None,
            f"Order: {order_id}" if order_id else None,
            f"Error: {error}",
        ),
        severity=Severity.FAILURE,
        dedupe_key=f"trade_error:{symbol or ''}:{action or ''}:{error[:80]}",
    )


#: Advisor abstentions that are not failures: the advisor did not ask the LLM on purpose (the
#: symbol's cooldown, the hourly budget, advisor off). They raise no alert.
ADVISOR_SKIPS = frozenset({"cooldown", "budget_exhausted", "advisor_off"})


def is_advisor_skip(event: AlertEvent | str, fields: Mapping[str, Any]) -> bool:
    """True for an ``llm_failure`` whose reason (the advisor's fallback) is a deliberate skip
    (:data:`ADVISOR_SKIPS`), not a failure."""
    if str(event) != AlertEvent.LLM_FAILURE.value:
        return False
    return any(str(fields.get(key) or "") in ADVISOR_SKIPS for key in ("reason", "fallback"))


def llm_failure(
    mode: Mode | str,
    *,
    reason: str,
    symbol: str | None = None,
    model: str | None = None,
    detail: str | None = None,
    fallback: str | None = None,
) -> AlertMessage:
    """The advisor call failed or the answer did not validate (skips: :func:`is_advisor_skip`)."""
    where = f" {symbol}" if symbol else ""
    return AlertMessage(
        event=AlertEvent.LLM_FAILURE,
        title=titled(mode, f"Advisor failure{where}: {reason}"),
        body=_lines(
            f"Model: {model}" if model else None,
            f"Detail: {detail}" if detail else None,
            f"Fallback: {fallback}" if fallback else None,
        )
        or reason,
        severity=Severity.WARNING,
        dedupe_key=f"llm_failure:{reason}:{symbol or ''}",
    )


def risk_rejection(
    mode: Mode | str,
    *,
    symbol: str,
    side: str,
    reason_code: str,
    message: str = "",
    amount: Number | None = None,
    price: Number | None = None,
) -> AlertMessage:
    """The risk manager refused an intent worth telling the owner about."""
    base, quote = split_symbol(symbol)
    return AlertMessage(
        event=AlertEvent.RISK_REJECTION,
        title=titled(mode, f"Risk rejected {str(side).upper()} {symbol}: {reason_code}"),
        body=_lines(
            message or None,
            f"Wanted: {num(amount)} {base} @ {num(price)} {quote}".rstrip()
            if amount is not None
            else None,
        )
        or reason_code,
        severity=Severity.WARNING,
        dedupe_key=f"risk_rejection:{symbol}:{side}:{reason_code}",
    )


def breaker_tripped(
    mode: Mode | str, *, breaker: str, reason: str, until_ms: int | None = None
) -> AlertMessage:
    """A risk circuit breaker stopped new entries."""
    return AlertMessage(
        event=AlertEvent.BREAKER_TRIPPED,
        title=titled(mode, f"Risk breaker tripped: {breaker}"),
        body=_lines(
            reason, f"Paused until {ms_to_iso(until_ms)}" if until_ms is not None else None
        ),
        severity=Severity.FAILURE,
        dedupe_key=f"breaker_tripped:{breaker}",
    )


def kill_switch(mode: Mode | str, *, reason: str, by: str | None = None) -> AlertMessage:
    """The kill switch stopped all trading."""
    return AlertMessage(
        event=AlertEvent.KILL_SWITCH,
        title=titled(mode, "KILL SWITCH: trading stopped"),
        body=_lines(reason, f"By: {by}" if by else None),
        severity=Severity.FAILURE,
        dedupe_key="kill_switch",
    )


def feed_degraded(
    mode: Mode | str,
    *,
    feed: str,
    status: str,
    detail: str | None = None,
    symbol: str | None = None,
) -> AlertMessage:
    """A market-data feed fell back, went stale or recovered."""
    where = f" {symbol}" if symbol else ""
    return AlertMessage(
        event=AlertEvent.FEED_DEGRADED,
        title=titled(mode, f"Data feed {feed}{where}: {status}"),
        body=detail or f"{feed} is {status}",
        severity=Severity.WARNING,
        dedupe_key=f"feed_degraded:{feed}:{symbol or ''}:{status}",
    )


def _summary(
    event: AlertEvent,
    mode: Mode | str,
    label: str,
    period: str,
    *,
    pnl: Number,
    trades: int,
    wins: int | None,
    losses: int | None,
    equity: Number | None,
    pnl_pct: Number | None,
    max_drawdown_pct: Number | None,
    fees: Number | None,
    currency: str,
) -> AlertMessage:
    wl = f" ({wins}W/{losses}L)" if wins is not None and losses is not None else ""
    return AlertMessage(
        event=event,
        title=titled(mode, f"{label} {period}: {signed_money(pnl, currency)}{_pct(pnl_pct)}"),
        body=_lines(
            f"PnL: {signed_money(pnl, currency)}{_pct(pnl_pct)}",
            f"Trades: {trades}{wl}",
            f"Fees: {money(fees, currency)}" if fees is not None else None,
            f"Equity: {money(equity, currency)}" if equity is not None else None,
            f"Max drawdown: {num(max_drawdown_pct, 2)}%" if max_drawdown_pct is not None else None,
        ),
        severity=Severity.INFO,
        dedupe_key=f"{event.value}:{period}",
    )


def daily_summary(
    mode: Mode | str,
    *,
    day: str,
    pnl: Number,
    trades: int,
    wins: int | None = None,
    losses: int | None = None,
    equity: Number | None = None,
    pnl_pct: Number | None = None,
    max_drawdown_pct: Number | None = None,
    fees: Number | None = None,
    currency: str = "USDT",
) -> AlertMessage:
    """End-of-day PnL summary (``day`` like ``2026-11-24``)."""
    return _summary(
        AlertEvent.DAILY_SUMMARY,
        mode,
        "Daily PnL",
        day,
        pnl=pnl,
        trades=trades,
        wins=wins,
        losses=losses,
        equity=equity,
        pnl_pct=pnl_pct,
        max_drawdown_pct=max_drawdown_pct,
        fees=fees,
        currency=currency,
    )


def weekly_summary(
    mode: Mode | str,
    *,
    week: str,
    pnl: Number,
    trades: int,
    wins: int | None = None,
    losses: int | None = None,
    equity: Number | None = None,
    pnl_pct: Number | None = None,
    max_drawdown_pct: Number | None = None,
    fees: Number | None = None,
    currency: str = "USDT",
) -> AlertMessage:
    """End-of-week PnL summary (``week`` like ``2026-W48``)."""
    return _summary(
        AlertEvent.WEEKLY_SUMMARY,
        mode,
        "Weekly PnL",
        week,
        pnl=pnl,
        trades=trades,
        wins=wins,
        losses=losses,
        equity=equity,
        pnl_pct=pnl_pct,
        max_drawdown_pct=max_drawdown_pct,
        fees=fees,
        currency=currency,
    )


def system(mode: Mode | str, *, message: str, title: str | None = None) -> AlertMessage:
    """A plain notice (bot started, stopped…)."""
    return AlertMessage(
        event=AlertEvent.SYSTEM,
        title=titled(mode, title or message[:60]),
        body=message,
        severity=Severity.INFO,
    )


def digest(mode: Mode | str, *, titles: list[str], total: int) -> AlertMessage:
    """Alerts the rate limit held back, coalesced into one message."""
    shown = titles[:10]
    more = total - len(shown)
    return AlertMessage(
        event=AlertEvent.DIGEST,
        title=titled(mode, f"{total} alert(s) held back by the rate limit"),
        body=_lines(*(f"• {t}" for t in shown), f"…and {more} more" if more > 0 else None),
        severity=Severity.INFO,
    )


def generic(mode: Mode | str, event: AlertEvent | str, fields: Mapping[str, Any]) -> AlertMessage:
    """Fallback when a formatter rejects its fields: never lose an alert over a typo."""
    try:
        kind = AlertEvent(event)
    except ValueError:
        kind = AlertEvent.SYSTEM
    body = _lines(*(f"{k}: {v}" for k, v in fields.items())) or str(event)
    return AlertMessage(
        event=kind,
        title=titled(mode, str(event).replace("_", " ")),
        body=body,
        severity=Severity.WARNING,
    )


Formatter = Callable[..., AlertMessage]

FORMATTERS: dict[AlertEvent, Formatter] = {
    AlertEvent.ORDER_FILLED: order_filled,
    AlertEvent.POSITION_EXITED: position_exited,
    AlertEvent.TRADE_ERROR: trade_error,
    AlertEvent.LLM_FAILURE: llm_failure,
    AlertEvent.RISK_REJECTION: risk_rejection,
    AlertEvent.BREAKER_TRIPPED: breaker_tripped,
    AlertEvent.KILL_SWITCH: kill_switch,
    AlertEvent.FEED_DEGRADED: feed_degraded,
    AlertEvent.DAILY_SUMMARY: daily_summary,
    AlertEvent.WEEKLY_SUMMARY: weekly_summary,
    AlertEvent.SYSTEM: system,
    AlertEvent.DIGEST: digest,
}


def format_alert(event: AlertEvent | str, mode: Mode | str, **fields: Any) -> AlertMessage:
    """Format ``event`` with its formatter; raises ``TypeError``/``ValueError`` on bad fields."""
    return FORMATTERS[AlertEvent(event)](mode, **fields)
