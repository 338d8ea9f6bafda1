"""A short-lived copy of the heavy read answers, so a busy dashboard costs the bot little.

Beside the running bot the records change with every candle, and each ``/metrics``,
``/equity``, ``/signals`` or ``/trades`` answer reads and serialises hundreds of rows. Polled at
100 requests/s that work (in the bot's process: it shares the interpreter with the bot) was
what slowed the bot (issue 18). This ASGI middleware answers an authenticated ``GET`` of those
paths from a copy: a copy younger than ``max_age`` seconds is the answer; an older one (up to
:data:`STALE_FACTOR` max_ages) is the answer while a new copy is computed in the background,
so no request waits for a computation the copy was there to spare; concurrent askers of a URL
without a copy wait for one computation. The copies are dropped when a request that may
change something (any method but GET/HEAD/OPTIONS) passes, and when the live-update watcher
sees new records (it calls :meth:`ReadCache.invalidate` before it tells the browsers), so the
dashboard's own actions and its live updates read fresh answers.

It sits inside :class:`~kmg_autotrader.webui.guard.RequestGuard` (Host check, body cap, security
headers) and serves only a request that authenticates, by the same check the routes make;
anything else goes on to the app, which answers as it always did.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from loguru import logger
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kmg_autotrader.webui.auth import SAFE_METHODS, authenticate

CACHED_PATHS = frozenset({"/metrics", "/equity", "/signals", "/trades", "/positions"})
MAX_ENTRIES = 256  # distinct URLs (query strings) kept at once
# A copy older than max_age is still the answer while a new one is computed in the background,
# up to this many max_ages old (then the request computes its own answer).
STALE_FACTOR = 2


@dataclass(frozen=True, slots=True)
class _Entry:
    at: float
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class ReadCache:
    """The copies: what the middleware keeps, and what the watcher drops."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self.entries: dict[tuple[str, bytes], _Entry] = {}
        self.inflight: dict[tuple[str, bytes], asyncio.Future[_Entry | None]] = {}
        self.generation = 0
        self.lock = threading.Lock()  # invalidate() may come from the watcher's thread

    def invalidate(self) -> None:
        """Drop every copy (thread-safe); answers being computed now are not kept."""
        with self.lock:
            self.generation += 1
            self.entries.clear()

    def prune(self, now: float) -> None:
        """Drop the old copies (all of them when the fresh ones alone are too many)."""
        for key in [k for k, e in self.entries.items() if now - e.at > self.max_age]:
            del self.entries[key]
        if len(self.entries) >= MAX_ENTRIES:
            self.entries.clear()


class ReadCacheMiddleware:
    """ASGI middleware: answers of :data:`CACHED_PATHS` for authenticated GETs from ``cache``."""

    def __init__(self, app: ASGIApp, *, cache: ReadCache) -> None:
        self.app = app
        self.cache = cache
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer from the copy when allowed; otherwise pass the request on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if method not in SAFE_METHODS:
            try:
                await self.app(scope, receive, send)
            finally:
                self.cache.invalidate()
            return
        path = scope.get("path", "")
        if method != "GET" or path not in CACHED_PATHS or authenticate(Request(scope)) is None:
            await self.app(scope, receive, send)
            return
        key = (path, scope.get("query_string", b""))
        entry = self.cache.entries.get(key)
        if entry is not None:
            age = time.monotonic() - entry.at
            if age <= self.cache.max_age * STALE_FACTOR:
                if age > self.cache.max_age and key not in self.cache.inflight:
                    self._refresh(key, scope)  # nobody waits for the new copy
                await _replay(entry, send)
                return
        pending = self.cache.inflight.get(key)
        if pending is not None:
            entry = await asyncio.shield(pending)
            if entry is not None:
                await _replay(entry, send)
                return
            await self.app(scope, receive, send)
            return
        await self._compute(key, scope, receive, send)

    def _refresh(self, key: tuple[str, bytes], scope: Scope) -> None:
        """Compute a new copy of ``key`` in the background (the request's own answer is the
        copy it found)."""
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: Message) -> None:
            return None

        async def refresh() -> None:
            try:
                await self._compute(key, dict(scope), receive, discard)
            except Exception as exc:  # the next request computes it in its own answer
                logger.warning("refreshing {} failed: {}: {}", key[0], type(exc).__name__, exc)

        task = asyncio.create_task(refresh())
        self._tasks.add(task)  # a reference until it ends (the loop holds tasks weakly)
        task.add_done_callback(self._tasks.discard)

    async def _compute(
        self, key: tuple[str, bytes], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the request, answer it, and keep a copy of a complete 200 answer."""
        future: asyncio.Future[_Entry | None] = asyncio.get_running_loop().create_future()
        self.cache.inflight[key] = future
        generation = self.cache.generation
        started = time.monotonic()
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        complete = False

        async def capture(message: Message) -> None:
            nonlocal status, headers, complete
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        entry: _Entry | None = None
        try:
            await self.app(scope, receive, capture)
            if status == 200 and complete:
                entry = _Entry(started, status, headers, b"".join(chunks))
                with self.cache.lock:
                    if generation == self.cache.generation:
                        if len(self.cache.entries) >= MAX_ENTRIES:
                            self.cache.prune(started)
                        self.cache.entries[key] = entry
        finally:
            del self.cache.inflight[key]
            future.set_result(entry)


async def _replay(entry: _Entry, send: Send) -> None:
    await send({"type": "http.response.start", "status": entry.status, "headers": entry.headers})
    await send({"type": "http.response.body", "body": entry.body})
