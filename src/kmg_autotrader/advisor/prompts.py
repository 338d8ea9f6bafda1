"""Prompt builder: versioned text templates in ``advisor/prompts/`` filled from the candidate and
the context. The output is deterministic (no wall time, sorted keys, fixed number formats) so
the same situation gives the same prompt hash, which is what replay looks answers up by. The
hash covers the market situation and the candidate, not the account (positions, trades, risk
state), which a backtest cannot reproduce."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Any

from kmg_autotrader.advisor.context import AdvisorContext, CandleSummary
from kmg_autotrader.domain import Candidate, Position
from kmg_autotrader.domain.clock import ms_to_iso

DEFAULT_VERSION = "v1"
_MAX_ITEMS = 5  # positions/trades/signals shown; keeps the prompt small enough for 2k contexts

Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class Prompt:
    """A rendered prompt: the chat messages, the template version and the replay hash (the
    hash of the prompt without its account lines, see :func:`prompt_hash`)."""

    messages: tuple[Message, ...]
    version: str
    hash: str

    def as_text(self) -> str:
        """The messages as one text block (for the audit log)."""
        return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in self.messages)


def _num(value: float | None) -> str:
    if value is None:
        return "none"
    return f"{value:.8g}"


def _pct(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:+.2f}%"


def _market(summary: CandleSummary | None, *, closes: bool = True) -> str:
    """The candle summary as text; ``closes=False`` leaves out the list of recent closes (the
    compact templates' ``$market_brief``: the changes and the range already summarise them,
    and every digit is a token to a small model)."""
    if summary is None:
        return "no candle summary"
    volume = "n/a" if summary.volume_ratio is None else f"{summary.volume_ratio:.2f}x average"
    brief = (
        f"last {_num(summary.last_close)}; change 1h {_pct(summary.change_1h)}, "
        f"4h {_pct(summary.change_4h)}, 24h {_pct(summary.change_24h)}; "
        f"24h high {_num(summary.high)} low {_num(summary.low)}; "
        f"average bar range {summary.avg_range * 100:.2f}%; last bar volume {volume}"
    )
    if not closes:
        return brief
    return f"{brief}; recent closes: {', '.join(_num(c) for c in summary.closes)}"


def _positions(positions: Sequence[Position]) -> str:
    if not positions:
        return "none"
    parts = [
        f"{p.symbol} {float(p.amount):.8g} @ {float(p.entry_price):.8g}"
        + (f" SL {float(p.stop_loss):.8g}" if p.stop_loss is not None else "")
        for p in list(positions)[:_MAX_ITEMS]
    ]
    return "; ".join(parts)


def _trades(trades: Sequence[Position]) -> str:
    if not trades:
        return "none"
    parts = []
    for p in list(trades)[-_MAX_ITEMS:]:
        exit_price = float(p.exit_price) if p.exit_price is not None else None
        change = (
            (exit_price - float(p.entry_price)) / float(p.entry_price)
            if exit_price is not None and p.entry_price > 0
            else None
        )
        parts.append(
            f"{p.symbol} entry {float(p.entry_price):.8g} exit {_num(exit_price)} "
            f"({_pct(change)}, pnl {float(p.realized_pnl):.2f}, {p.exit_reason or 'n/a'})"
        )
    return "; ".join(parts)


def _mapping(values: Mapping[str, Any]) -> str:
    if not values:
        return "none"
    parts = []
    for key in sorted(values):
        value = values[key]
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        parts.append(f"{key}={shown}")
    return ", ".join(parts)


class PromptBuilder:
    """Renders the versioned templates ``system_<v>.txt``, ``user_<v>.txt``, ``repair_<v>.txt``.

    The stored version is ``<v>-<8 hex of the templates' sha256>``, so an edited template is
    told apart from the original even if nobody bumped the version.
    """

    def __init__(self, version: str = DEFAULT_VERSION) -> None:
        folder = resources.files("kmg_autotrader.advisor").joinpath("prompts")
        texts = {
            part: folder.joinpath(f"{part}_{version}.txt").read_text("utf-8")
            for part in ("system", "user", "repair")
        }
        digest = hashlib.sha256("\0".join(texts[k] for k in sorted(texts)).encode()).hexdigest()
        self.version = f"{version}-{digest[:8]}"
        self._system = Template(texts["system"])
        self._user = Template(texts["user"])
        self._repair = Template(texts["repair"])

    def build(self, candidate: Candidate, context: AdvisorContext) -> Prompt:
        """The prompt for ``candidate`` in ``context``."""
        quote = candidate.symbol.partition("/")[2] or "quote currency"
        reasons = [
            f"- {s.rule} ({s.side.value}, strength {s.strength:.2f}): {s.reason}"
            for s in candidate.signals[:_MAX_ITEMS]
        ] + [f"- filter {f.name}: {f.reason}" for f in candidate.trace if f.reason][:_MAX_ITEMS]
        indicators: dict[str, float] = {}
        for signal in candidate.signals:
            indicators.update(signal.indicators)
        indicators.update(context.indicators)
        system = self._system.substitute(quote=quote).strip()
        market_part = dict(
            side=candidate.side.value,
            symbol=candidate.symbol,
            timeframe=candidate.timeframe,
            price=_num(candidate.price),
            time=ms_to_iso(candidate.timestamp),
            strategy=candidate.strategy,
            regime=candidate.regime.value,
            confidence=f"{candidate.confidence:.2f}",
            expected_move=_pct(candidate.expected_move),
            stop_loss=_num(candidate.stop_loss),
            take_profit=_num(candidate.take_profit),
            reasons="\n".join(reasons) or "- (none given)",
            indicators=_mapping(indicators),
            market=_market(context.candles),
            market_brief=_market(context.candles, closes=False),
        )
        account_part = dict(
            positions=_positions(context.open_positions),
            trades=_trades(context.recent_trades),
            risk=_mapping(context.risk_state),
        )
        user = self._user.substitute(**market_part, **account_part).strip()
        messages: tuple[Message, ...] = (
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        )
        # The replay key leaves the account out: a backtest replays the market situation but
        # cannot reproduce the live account (equity, positions, trades) the answer was given in.
        keyed = self._user.substitute(**market_part, **dict.fromkeys(account_part, "-")).strip()
        key_messages: tuple[Message, ...] = (
            {"role": "system", "content": system},
            {"role": "user", "content": keyed},
        )
        return Prompt(messages, self.version, prompt_hash(key_messages, self.version))

    def repair(self, prompt: Prompt, raw_answer: str, errors: Sequence[str]) -> list[Message]:
        """Messages for the one repair attempt: the prompt, the bad answer, the errors quoted."""
        text = self._repair.substitute(errors="; ".join(errors)).strip()
        return [
            *prompt.messages,
            {"role": "assistant", "content": raw_answer[:4000]},
            {"role": "user", "content": text},
        ]


def prompt_hash(messages: Sequence[Message], version: str) -> str:
    """sha256 of the version and the messages (the key replay looks recorded answers up by).

    :meth:`PromptBuilder.build` hashes the prompt with its account lines (open positions,
    recent trades, risk state) blanked, so the same candidate on the same candles gets the same
    key in the live loop and in ``kmg backtest --advisor replay``.
    """
    payload = json.dumps({"v": version, "m": list(messages)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()
