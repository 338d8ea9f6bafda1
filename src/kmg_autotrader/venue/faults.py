"""Fault injection for the venue: what goes wrong, where, how often; scripted or seeded chaos.

Faults are dialect-neutral: each is matched by the *kind of endpoint* a request is for
(:data:`ENDPOINTS`) and rendered by the dialect in its own wire format (Binance
``{"code": -1003, ...}``, Kraken ``{"error": ["EAPI:Rate limit exceeded"]}``). Every injected
fault is logged and counted (``GET /venue/faults``).

Kinds (:data:`KINDS`):

* ``latency`` — answer after ``delay`` s (any endpoint, ``ws`` too: messages are held back).
* ``timeout_after_accept`` — ``create_order`` only: the order IS placed, then the answer comes
  ``delay`` s late (set it above the client's timeout), or with ``delay=0`` the connection is
  dropped without an answer.
* ``not_found`` — armed by the next ``create_order``: that order is "not found" for its first
  ``lookups`` look-ups (fetch by id or client id) although it exists.
* ``rate_limit`` (429) and ``ban`` (418) with ``Retry-After: retry_after``; a scripted ban
  answers every REST request 418 for ``retry_after`` s (a chaos ban only the one request).
* ``server_error`` — HTTP ``status`` (500, 502, 503 or 504).
* ``partial_fill`` — ``create_order``: only ``fraction`` of the order fills now, the rest later.
* ``ws_drop`` (close every stream socket), ``ws_stall`` (send nothing for ``delay`` s, sockets
  stay open), ``ws_duplicate`` (the next message is sent twice), ``ws_reorder`` (the next two
  messages are swapped).
* ``restart`` — the venue restarts: every socket is closed (REST and WS), the books are kept,
  it listens again after ``delay`` s.

A fault hits ``times`` matching requests (``-1``: every one while it is queued) after skipping
``after`` of them. ``--chaos SEED --chaos-rate P`` draws faults at random with a seeded
generator per endpoint kind: the same requests of a kind, in the same order, meet the same faults
(chaos never draws ``restart``, and its delays do not change what later requests meet).
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from loguru import logger

ENDPOINTS = (
    "create_order",
    "fetch_order",
    "cancel_order",
    "open_orders",
    "my_trades",
    "balance",
    "ohlcv",
    "ticker",
    "order_book",
    "markets",
    "ws",
    "any",
)
KINDS = (
    "latency",
    "timeout_after_accept",
    "not_found",
    "rate_limit",
    "ban",
    "server_error",
    "partial_fill",
    "ws_drop",
    "ws_stall",
    "ws_duplicate",
    "ws_reorder",
    "restart",
)
REST_KINDS = frozenset({"latency", "rate_limit", "ban", "server_error", "restart"})
ORDER_KINDS = frozenset({"timeout_after_accept", "partial_fill", "not_found"})
WS_KINDS = frozenset({"latency", "ws_drop", "ws_stall", "ws_duplicate", "ws_reorder", "restart"})
SERVER_ERRORS = (500, 502, 503, 504)


class FaultError(ValueError):
    """A fault description the venue cannot use (one clear line)."""


@dataclass
class Fault:
    """One fault to inject; see the module docstring for the kinds and their parameters."""

    kind: str
    endpoint: str = "any"
    times: int = 1
    after: int = 0
    delay: float = 0.0
    status: int = 500
    retry_after: int = 1
    fraction: float = 0.5
    lookups: int = 1
    id: int = 0
    fired: int = 0
    source: str = "scripted"  # or "chaos"

    def validate(self) -> Fault:
        """Check the fields; raises :class:`FaultError` with one line."""
        if self.kind not in KINDS:
            raise FaultError(f"unknown fault kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.endpoint not in ENDPOINTS:
            raise FaultError(
                f"unknown endpoint {self.endpoint!r}; choose one of {', '.join(ENDPOINTS)}"
            )
        if self.kind in ORDER_KINDS and self.endpoint not in ("any", "create_order"):
            raise FaultError(f"fault {self.kind} applies to create_order only")
        if self.kind in WS_KINDS - REST_KINDS and self.endpoint not in ("any", "ws"):
            raise FaultError(f"fault {self.kind} applies to ws only")
        if self.kind == "server_error" and self.status not in SERVER_ERRORS:
            raise FaultError(f"server_error status must be one of {SERVER_ERRORS}")
        if not 0 < self.fraction < 1:
            raise FaultError("fraction must be between 0 and 1 (exclusive)")
        if self.delay < 0 or self.after < 0 or self.retry_after < 0 or self.lookups < 1:
            raise FaultError("delay, after and retry_after must be >= 0, lookups >= 1")
        if self.times == 0 or self.times < -1:
            raise FaultError("times must be >= 1, or -1 for every matching request")
        return self

    def applies_to(self, endpoint: str) -> bool:
        """Whether a request for ``endpoint`` can meet this fault."""
        if self.kind in ORDER_KINDS:
            return endpoint == "create_order"
        if endpoint == "ws":
            return self.kind in WS_KINDS and self.endpoint in ("any", "ws")
        if self.kind not in REST_KINDS:
            return False
        return self.endpoint in ("any", endpoint)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return asdict(self)


def fault_from_json(data: dict[str, Any]) -> Fault:
    """A :class:`Fault` from a JSON object (unknown keys refused)."""
    if not isinstance(data, dict) or "kind" not in data:
        raise FaultError('a fault is a JSON object with at least "kind"')
    allowed = {f.name for f in fields(Fault)} - {"id", "fired", "source"}
    unknown = set(data) - allowed
    if unknown:
        raise FaultError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
    try:
        fault = Fault(**data)
        for name in ("times", "after", "status", "retry_after", "lookups"):
            setattr(fault, name, int(getattr(fault, name)))
        fault.delay, fault.fraction = float(fault.delay), float(fault.fraction)
    except (TypeError, ValueError) as exc:
        raise FaultError(f"bad fault {data}: {exc}") from None
    return fault.validate()


def parse_fault_spec(spec: str) -> Fault:
    """``KIND[:ENDPOINT][,key=value...]`` (the CLI's ``--fault``), e.g.
    ``rate_limit:create_order,times=3,retry_after=2`` or ``ws_stall,delay=5``."""
    head, *pairs = [p.strip() for p in spec.split(",") if p.strip()] or [""]
    kind, _, endpoint = head.partition(":")
    data: dict[str, Any] = {"kind": kind, "endpoint": endpoint or "any"}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise FaultError(f"bad fault option {pair!r} in {spec!r} (want key=value)")
        data[key.strip()] = value.strip()
    return fault_from_json(data)


@dataclass
class FaultEvent:
    """One injected fault, as logged."""

    ts: float
    kind: str
    endpoint: str
    source: str
    detail: str = ""


@dataclass
class _Hidden:
    lookups: int


@dataclass
class FaultPlan:
    """The queued faults, the chaos generator, the counters and the log of injected faults.

    ``chaos_seed``: draw random faults with this seed (None: none). ``chaos_rate``: chance
    that a request (or WS message) meets one.
    """

    faults: list[Fault] = field(default_factory=list)
    chaos_seed: int | None = None
    chaos_rate: float = 0.05
    counts: Counter[str] = field(default_factory=Counter)
    events: deque[FaultEvent] = field(default_factory=lambda: deque(maxlen=500))
    banned_until: float = 0.0  # wall time (monotonic) until which REST answers 418
    ban_retry_after: int = 0
    _next_id: int = 1
    _hidden: dict[tuple[str, str], _Hidden] = field(default_factory=dict)
    _pending_not_found: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 <= self.chaos_rate <= 1:
            raise FaultError("chaos rate must be between 0 and 1")
        self._rngs: dict[str, random.Random] = {}
        queued, self.faults = list(self.faults), []
        for fault in queued:
            self.add(fault)

    # ---- the queue --------------------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        """Queue a fault (validated); returns it with its id."""
        fault.validate()
        fault.id = self._next_id
        self._next_id += 1
        self.faults.append(fault)
        return fault

    def clear(self) -> int:
        """Drop every queued fault, a running ban and hidden orders; returns how many faults."""
        dropped = len(self.faults)
        self.faults.clear()
        self._hidden.clear()
        self._pending_not_found.clear()
        self.banned_until = 0.0
        return dropped

    @property
    def chaos(self) -> bool:
        """True when random faults are drawn."""
        return self.chaos_seed is not None and self.chaos_rate > 0

    # ---- drawing ----------------------------------------------------------------------------

    def draw(self, endpoint: str) -> Fault | None:
        """The fault a request for ``endpoint`` meets now (consumed and counted), or None."""
        chosen: Fault | None = None
        for fault in self.faults:
            if not fault.applies_to(endpoint):
                continue
            if fault.after > 0:
                fault.after -= 1  # every matching request counts towards ``after``
                continue
            chosen = fault
            break
        if chosen is not None:
            chosen.fired += 1
            if chosen.times > 0:
                chosen.times -= 1
                if chosen.times == 0:
                    self.faults.remove(chosen)
        elif self.chaos:
            chosen = self._chaos(endpoint)
        if chosen is None:
            return None
        if chosen.kind == "not_found":
            self._pending_not_found.append(chosen)  # armed for the order being created
            return self.draw_after_not_found(endpoint)
        if chosen.kind == "ban" and chosen.source != "chaos":
            # a scripted ban lasts ``retry_after`` s; a chaos ban answers one request only, so
            # a seeded run does not depend on timing
            self.banned_until = time.monotonic() + chosen.retry_after
            self.ban_retry_after = chosen.retry_after
        self.record(chosen, endpoint)
        return chosen

    def draw_after_not_found(self, endpoint: str) -> Fault | None:
        """A ``not_found`` does not stop the create: draw again for the request itself
        (scripted faults only, so chaos draws stay one per request)."""
        chaos_seed, self.chaos_seed = self.chaos_seed, None
        try:
            return self.draw(endpoint)
        finally:
            self.chaos_seed = chaos_seed

    def banned(self) -> int | None:
        """Seconds left of a running 418 ban (None: not banned)."""
        left = self.banned_until - time.monotonic()
        return max(1, round(left)) if left > 0 else None

    def _chaos(self, endpoint: str) -> Fault | None:
        # one generator per endpoint kind: the faults a kind of request meets do not depend on
        # how REST calls and stream messages happened to interleave
        rng = self._rngs.get(endpoint)
        if rng is None:
            rng = self._rngs[endpoint] = random.Random(f"{self.chaos_seed}:{endpoint}")
        if rng.random() >= self.chaos_rate:
            return None
        if endpoint == "ws":
            menu = [("ws_duplicate", 3), ("ws_reorder", 3), ("ws_drop", 2), ("ws_stall", 1)]
        else:
            menu = [("latency", 4), ("rate_limit", 3), ("server_error", 3), ("ban", 1)]
            if endpoint == "create_order":
                menu += [("timeout_after_accept", 4), ("partial_fill", 2), ("not_found", 2)]
        kinds, weights = zip(*menu, strict=True)
        kind = rng.choices(kinds, weights)[0]
        fault = Fault(kind=kind, endpoint=endpoint, source="chaos")
        if kind == "latency":
            fault.delay = round(rng.uniform(0.05, 0.5), 3)
        elif kind == "server_error":
            fault.status = rng.choice(SERVER_ERRORS)
        elif kind == "ws_stall":
            fault.delay = round(rng.uniform(0.5, 2.0), 3)
        elif kind == "partial_fill":
            fault.fraction = rng.choice((0.25, 0.5, 0.75))
        elif kind == "not_found":
            fault.lookups = rng.randint(1, 3)
        fault.id = self._next_id
        self._next_id += 1
        fault.fired = 1
        return fault

    # ---- orders hidden from look-ups --------------------------------------------------------

    def order_created(self, api_key: str, order_id: str) -> None:
        """Arm a drawn ``not_found`` for the order just created."""
        for fault in self._pending_not_found:
            self._hidden[(api_key, order_id)] = _Hidden(fault.lookups)
            self.record(fault, "create_order", f"order {order_id} hidden for {fault.lookups}")
        self._pending_not_found.clear()

    def order_creation_failed(self) -> None:
        """A create that was refused does not keep a ``not_found`` armed."""
        self._pending_not_found.clear()

    def hidden(self, api_key: str, order_id: str) -> bool:
        """True while a look-up of this order must answer "not found" (counts the look-up)."""
        entry = self._hidden.get((api_key, order_id))
        if entry is None:
            return False
        entry.lookups -= 1
        if entry.lookups <= 0:
            del self._hidden[(api_key, order_id)]
        logger.warning("venue fault not_found: look-up of order {} answered not found", order_id)
        self.counts["not_found_lookup"] += 1
        return True

    # ---- record -----------------------------------------------------------------------------

    def record(self, fault: Fault, endpoint: str, detail: str = "") -> None:
        """Log and count one injected fault."""
        self.counts[fault.kind] += 1
        self.events.append(FaultEvent(time.time(), fault.kind, endpoint, fault.source, detail))
        logger.warning(
            "venue fault {} on {} ({}{})",
            fault.kind,
            endpoint,
            fault.source,
            f", {detail}" if detail else "",
        )

    def stats(self) -> dict[str, Any]:
        """Counters, queued faults and the latest events (``GET /venue/faults``)."""
        return {
            "counts": dict(self.counts),
            "total": sum(v for k, v in self.counts.items() if k != "not_found_lookup"),
            "queued": [f.to_json() for f in self.faults],
            "chaos": {"seed": self.chaos_seed, "rate": self.chaos_rate} if self.chaos else None,
            "recent": [asdict(e) for e in list(self.events)[-50:]],
        }
