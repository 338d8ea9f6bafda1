"""Client order ids and intent keys."""

from __future__ import annotations

import hashlib
import os

from kmg_autotrader.domain import Mode, OrderIntent

# uuid4 layout: version nibble 4, RFC 4122 variant bits 10 (as ``uuid.UUID(..., version=4)``)
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
_LETTER = {mode.value: mode.value[0] for mode in Mode}  # a Mode hashes like its text


def _uuid4_hex() -> str:
    """``uuid.uuid4().hex`` without building a ``UUID`` object (same bits, same format)."""
    return "%032x" % ((int.from_bytes(os.urandom(16), "big") & _UUID4_CLEAR) | _UUID4_SET)


def new_client_order_id(mode: Mode, max_length: int = 28) -> str:
    """A fresh client order id, made before the order is sent.

    ``kmg`` + mode letter + random hex, ``max_length`` characters in all (28 by default:
    within Binance's 36; Kraken's free-text ``cl_ord_id`` allows 18).
    """
    letter = _LETTER.get(mode) or (mode if isinstance(mode, Mode) else Mode(mode)).value[0]
    return f"kmg{letter}{_uuid4_hex()[: max(max_length - 4, 12)]}"


def intent_key(intent: OrderIntent) -> str:
    """A stable id of an intent: the same decision always maps to the same key, so it is
    never executed twice and an unresolved order for it blocks a second attempt."""
    # one f-string, each part through str() as the join of str(part) did: the same text
    # (``_value_`` is what the ``value`` property returns, without its two Python calls)
    raw = (
        f"{intent.mode._value_!s}|{intent.symbol!s}|{intent.side._value_!s}|{intent.created_at!s}|"
        f"{intent.signal_id!s}|{intent.risk_decision_id!s}|{intent.amount.normalize()!s}"
    )
    return "i" + hashlib.sha256(raw.encode()).hexdigest()[:31]
