"""A fake OpenAI-compatible chat-completions server on 127.0.0.1, run in a background thread so
the real ``openai`` SDK can talk to it from a test's own event loop.

Queue what the next requests get with :meth:`FakeLlmServer.enqueue`; when the queue is empty
every request gets :attr:`FakeLlmServer.default`. Every request body is kept in
:attr:`FakeLlmServer.requests` so tests can check how JSON was forced.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``content`` as the assistant message, or an HTTP ``status`` error;
    ``delay`` seconds first (a timeout for a short client timeout)."""

    content: str | None = None
    status: int = 200
    delay: float = 0.0
    refusal: str | None = None
    error_code: str | None = None


def answer(obj: dict[str, Any], **kwargs: Any) -> Reply:
    """A reply whose content is ``obj`` as JSON."""
    return Reply(content=json.dumps(obj), **kwargs)


def text(content: str, **kwargs: Any) -> Reply:
    """A reply with raw ``content`` (not necessarily JSON)."""
    return Reply(content=content, **kwargs)


def error(status: int, code: str | None = None) -> Reply:
    """An HTTP error (429, 500, 400…) with an OpenAI-style error body."""
    return Reply(status=status, error_code=code)


def slow(seconds: float, obj: dict[str, Any] | None = None) -> Reply:
    """A reply that arrives after ``seconds``."""
    return Reply(content=json.dumps(obj or {}), delay=seconds)


class FakeLlmServer:
    """Context manager: ``with FakeLlmServer() as llm: ... llm.base_url``."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or error(500)
        self.queue: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        #: Answer 400 to ``response_format: json_schema`` like servers without Structured Outputs.
        self.reject_json_schema = False
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``…/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._lock:
            self.queue.extend(replies)

    def _next(self) -> Reply:
        with self._lock:
            return self.queue.popleft() if self.queue else self.default

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self.requests.append(body)
        response_format = body.get("response_format") or {}
        if self.reject_json_schema and response_format.get("type") == "json_schema":
            return web.json_response(
                {"error": {"message": "response_format json_schema is not supported"}},
                status=400,
            )
        reply = self._next()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            payload = {
                "error": {
                    "message": f"fake error {reply.status}",
                    "type": "fake",
                    "code": reply.error_code,
                }
            }
            return web.json_response(payload, status=reply.status)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.refusal is not None:
            message["refusal"] = reply.refusal
        return web.json_response(
            {
                "id": f"chatcmpl-fake-{len(self.requests)}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
            }
        )

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def start(self) -> None:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="fake-llm", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake LLM server did not start")

    def stop(self) -> None:
        """Stop serving."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeLlmServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
