"""A local fake of the Anthropic Messages streaming API, for tests.

The service reaches Claude only through the official ``anthropic`` SDK, so the
honest way to test it is to keep that SDK and replace what lies behind it: this
aiohttp server answers ``POST /v1/messages`` with ``"stream": true`` in the wire
format of the real API. Tests script what the next chat requests get (text,
slowness, HTTP errors, mid-stream drops, an ``event: error``, stalls, endless
streams), replay real recorded streams, and inspect what the service sent::

    fake = FakeAnthropic()
    await fake.start()
    fake.script(Reply.text(["Hel", "lo"]), Reply.http_error(529, error_type="overloaded_error"))
    client = AsyncAnthropic(base_url=fake.base_url, api_key="test", max_retries=0)
    ...
    await fake.close()

Unscripted chat requests get an echo of the last user message, and requests for
a conversation title are answered apart, so a test scripts only the turns it is about.

Thinking, tool use and multi-round turns are streamed in the real wire format
(``thinking_delta``/``signature_delta``, ``input_json_delta``)::

    fake.script(
        Reply.blocks(Thinking("Let me look."), ToolUse("toolu_1", "calculate", {...}),
                     stop_reason="tool_use"),
        Reply.text(["It is 4."]),
    )

Server tools (web search) stream as in Anthropic's documented example:
``server_tool_use`` with its query in an ``input_json_delta``, the
``web_search_tool_result`` whole in its ``content_block_start``, then text whose
``citations_delta``s precede its ``text_delta``s::

    fake.script(
        Reply.blocks(ServerToolUse("srvtoolu_1", input={"query": "q"}),
                     ServerToolResult("srvtoolu_1", search_results(("Title", "https://..."))),
                     CitedText([web_citation(...)], ["The answer."])),
    )

Like the real API, every request is checked (``check_request``): roles
alternate, each ``tool_use`` is answered by a ``tool_result`` at the start of
the next user message, thinking blocks, server tool blocks and citations come
back exactly as issued (byte for byte), server tool definitions are well
formed (web fetch needs its ``anthropic-beta`` header), image and document
blocks carry valid base64 of an accepted type and size (``fake_media.py``).
A violation is answered 400 ``invalid_request_error``. Every request's body is
kept (``requests``), so tests see exactly what reached the model.

``POST /v1/messages/count_tokens`` answers ``{"input_tokens": N}`` for the
prompt as ``/v1/messages`` would bill it whole (``fake_cache.prompt_tokens``),
after the same checks, and, as the API does, refuses ``tool_use`` or
``tool_result`` blocks in a request that defines no tools; its bodies are kept
in ``count_requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fake_cache import (
    Accounting,
    PromptCache,
    check_breakpoints,
    prompt_tokens,
    uncached,
)
from tests.fake_media import check_media

TITLE_MARKER = "conversation title"
TITLE_TEXT = "Fake title"
# Real provider streams, recorded by the SDK's authors (README.md there says where from).
RECORDED_STREAMS = Path(__file__).resolve().parent / "data" / "anthropic-streams"

# A paused stream wakes this often to notice that its client left: cancel tests
# assert that the upstream request is closed promptly, not after the pause.
_POLL_SECONDS = 0.01
# close() must not wait out an endless or stalled stream a test left open.
_SHUTDOWN_SECONDS = 0.2
# None: the prompt's own count, billed by the fake's prompt cache (`fake_cache.py`).
_DEFAULT_INPUT_TOKENS: int | None = None


class _ClientGone(Exception):
    """The client closed the connection before the stream ended."""


@dataclass
class RecordedRequest:
    """What the fake saw of one request, and how its stream ended.

    The events are ``threading.Event`` so that both async tests (same loop) and
    sync tests (fake in its own thread) can read them.
    """

    body: dict[str, Any]
    headers: dict[str, str]  # names lower-cased
    events_sent: int = 0
    closed_by_client: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    closed_at: float | None = None  # time.monotonic() when the close was noticed
    rejected: str | None = None  # why the request was refused as invalid (400), if it was
    billing: Accounting | None = None  # what the prompt cache made of it (valid requests)

    @property
    def sent(self) -> dict[str, Any]:
        """The body as if prompt caching were off: what tests about the context compare."""
        return uncached(self.body)

    async def wait_finished(self, within: float = 5.0) -> bool:
        """Wait, from any event loop, until the handler has ended; False if it
        has not ``within`` seconds.

        A client's close is noticed asynchronously, so a test that cancels a
        turn waits for this before it asserts on ``closed_by_client``.
        """
        return await asyncio.to_thread(self.finished.wait, within)


class _Exchange:
    """One request and the event stream written back to it, in Anthropic's shapes."""

    def __init__(
        self,
        request: web.Request,
        record: RecordedRequest,
        request_id: str,
        issued: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.request = request
        self.record = record
        self.request_id = request_id
        self.response: web.StreamResponse | None = None
        self.billing = Accounting(0)  # set from the prompt cache
        self.scripted_input_tokens: int | None = None  # a script's count, reported instead
        # Thinking blocks handed out, by signature: they must come back unchanged.
        self.issued = issued if issued is not None else {}

    def _client_gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def open(self) -> None:
        response = web.StreamResponse(
            headers={"request-id": self.request_id, "cache-control": "no-cache"}
        )
        response.content_type = "text/event-stream"
        response.charset = "utf-8"
        await response.prepare(self.request)
        self.response = response

    async def write(self, chunk: bytes) -> None:
        """Write one whole SSE event, or raise ``_ClientGone``."""
        assert self.response is not None, "open() first"
        if self._client_gone():
            raise _ClientGone
        try:
            await self.response.write(chunk)
        except ConnectionError as exc:
            raise _ClientGone from exc
        self.record.events_sent += 1

    async def event(self, name: str, **fields: Any) -> None:
        """Send one event; as in the API, its data's ``type`` repeats its name."""
        payload = json.dumps({"type": name, **fields}, separators=(",", ":"))
        await self.write(f"event: {name}\ndata: {payload}\n\n".encode())

    async def pause(self, seconds: float) -> None:
        """Sleep, but raise ``_ClientGone`` as soon as the client leaves."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._client_gone():
                raise _ClientGone
            await asyncio.sleep(min(left, _POLL_SECONDS))

    async def abort(self) -> None:
        """Drop the TCP connection in the middle of the response body."""
        transport = self.request.transport
        if transport is None:
            raise _ClientGone
        # What was written must reach the client first, or it sees less than
        # scripted; abort() discards the buffer. Bounded: the client may not read.
        for _ in range(100):
            if not transport.get_write_buffer_size():
                break
            await asyncio.sleep(_POLL_SECONDS)
        transport.abort()

    def usage(self, **more: Any) -> dict[str, Any]:
        """The usage object as the API reports it, caching included; a scripted
        `input_tokens` replaces the counted one."""
        billing, scripted = self.billing, self.scripted_input_tokens
        return {
            "input_tokens": billing.input_tokens if scripted is None else scripted,
            "cache_creation_input_tokens": billing.cache_creation_input_tokens,
            "cache_read_input_tokens": billing.cache_read_input_tokens,
            **more,
        }

    async def start_message(self, input_tokens: int | None) -> None:
        self.scripted_input_tokens = input_tokens
        message = {
            "id": f"msg_{self.request_id}",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.record.body.get("model", "claude-fake"),
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self.usage(output_tokens=1),
        }
        await self.event("message_start", message=message)

    async def start_text_block(self) -> None:
        await self.event("content_block_start", index=0, content_block={"type": "text", "text": ""})
        await self.event("ping")

    async def begin(self, input_tokens: int | None = _DEFAULT_INPUT_TOKENS) -> None:
        """Open the response and start a message with one text block."""
        await self.open()
        await self.start_message(input_tokens)
        await self.start_text_block()

    async def text_deltas(
        self, chunks: list[str], *, delay: float = 0.0, first_delay: float = 0.0
    ) -> None:
        for index, chunk in enumerate(chunks):
            await self.pause(first_delay if index == 0 else delay)
            delta = {"type": "text_delta", "text": chunk}
            await self.event("content_block_delta", index=0, delta=delta)

    async def finish_message(self, output_tokens: int, stop_reason: str) -> None:
        await self.event("content_block_stop", index=0)
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        usage = self.usage(output_tokens=output_tokens)
        await self.event("message_delta", delta=delta, usage=usage)
        await self.event("message_stop")


class Block:
    """One content block of a `Reply.blocks` message."""

    async def play(self, exchange: _Exchange, index: int) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Block):
    """Text in deltas; `citations` (web search sources) come first, as `citations_delta`s."""

    chunks: list[str]
    delay: float = 0.0
    citations: tuple[dict[str, Any], ...] = ()

    async def play(self, exchange: _Exchange, index: int) -> None:
        await exchange.event(
            "content_block_start", index=index, content_block={"type": "text", "text": ""}
        )
        for citation in self.citations:
            delta = {"type": "citations_delta", "citation": citation}
            await exchange.event("content_block_delta", index=index, delta=delta)
        for chunk in self.chunks:
            await exchange.pause(self.delay)
            delta = {"type": "text_delta", "text": chunk}
            await exchange.event("content_block_delta", index=index, delta=delta)


@dataclass(frozen=True)
class Thinking(Block):
    """Thinking in deltas, then its signature; `delay` between deltas (cancel tests)."""

    text: str
    signature: str = ""
    delay: float = 0.0
    pieces: int = 3

    async def play(self, exchange: _Exchange, index: int) -> None:
        signature = self.signature or f"sig_{exchange.request_id}_{index}"
        start = {"type": "thinking", "thinking": "", "signature": ""}
        await exchange.event("content_block_start", index=index, content_block=start)
        size = max(1, -(-len(self.text) // self.pieces))
        for offset in range(0, len(self.text), size):
            await exchange.pause(self.delay)
            delta = {"type": "thinking_delta", "thinking": self.text[offset : offset + size]}
            await exchange.event("content_block_delta", index=index, delta=delta)
        exchange.issued[signature] = {
            "type": "thinking",
            "thinking": self.text,
            "signature": signature,
        }
        delta = {"type": "signature_delta", "signature": signature}
        await exchange.event("content_block_delta", index=index, delta=delta)


@dataclass(frozen=True)
class RedactedThinking(Block):
    data: str = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"

    async def play(self, exchange: _Exchange, index: int) -> None:
        block = {"type": "redacted_thinking", "data": self.data}
        exchange.issued[self.data] = block
        await exchange.event("content_block_start", index=index, content_block=block)


@dataclass(frozen=True)
class ToolUse(Block):
    """A `tool_use` block whose input JSON arrives in pieces (`raw`: exactly these bytes);
    `server`: a `server_tool_use` (a tool the provider runs, e.g. web_search)."""

    id: str
    name: str
    input: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None
    server: bool = False

    async def play(self, exchange: _Exchange, index: int) -> None:
        kind = "server_tool_use" if self.server else "tool_use"
        start = {"type": kind, "id": self.id, "name": self.name, "input": {}}
        await exchange.event("content_block_start", index=index, content_block=start)
        text = self.raw if self.raw is not None else json.dumps(self.input)
        for offset in range(0, len(text), 7):
            delta = {"type": "input_json_delta", "partial_json": text[offset : offset + 7]}
            await exchange.event("content_block_delta", index=index, delta=delta)


@dataclass(frozen=True)
class ServerToolUse(Block):
    """A `server_tool_use` block (the provider runs it): its input in one `input_json_delta`,
    as in Anthropic's web search streaming example."""

    id: str
    name: str = "web_search"
    input: dict[str, Any] = field(default_factory=dict)

    async def play(self, exchange: _Exchange, index: int) -> None:
        start = {"type": "server_tool_use", "id": self.id, "name": self.name, "input": {}}
        await exchange.event("content_block_start", index=index, content_block=start)
        delta = {"type": "input_json_delta", "partial_json": json.dumps(self.input)}
        await exchange.event("content_block_delta", index=index, delta=delta)
        exchange.issued[f"server_tool_use:{self.id}"] = {**start, "input": self.input}


@dataclass(frozen=True)
class ServerToolResult(Block):
    """A server tool's result block (`web_search_tool_result`, ...): whole in its start event."""

    tool_use_id: str
    content: Any  # a list of results, or an error object
    type: str = "web_search_tool_result"

    async def play(self, exchange: _Exchange, index: int) -> None:
        block = {"type": self.type, "tool_use_id": self.tool_use_id, "content": self.content}
        exchange.issued[f"{self.type}:{self.tool_use_id}"] = block
        await exchange.event("content_block_start", index=index, content_block=block)


@dataclass(frozen=True)
class CitedText(Block):
    """A text block whose `citations_delta`s come first, then its text (as the API streams)."""

    citations: list[dict[str, Any]]
    chunks: list[str]

    async def play(self, exchange: _Exchange, index: int) -> None:
        start = {"type": "text", "text": ""}
        await exchange.event("content_block_start", index=index, content_block=start)
        for citation in self.citations:
            exchange.issued[json.dumps(citation)] = citation
            delta = {"type": "citations_delta", "citation": citation}
            await exchange.event("content_block_delta", index=index, delta=delta)
        for chunk in self.chunks:
            delta = {"type": "text_delta", "text": chunk}
            await exchange.event("content_block_delta", index=index, delta=delta)


def search_results(*pages: tuple[str, str]) -> list[dict[str, Any]]:
    """`web_search_result`s for (title, url) pairs, with the opaque fields the API adds."""
    return [
        {
            "type": "web_search_result",
            "url": url,
            "title": title,
            "encrypted_content": f"EqgfCioIARgBIiQ3YTAw{number}Mi1mZjM5LTQ1NGUtODgxNC1kNjNj",
            "page_age": "April 30, 2025",
        }
        for number, (title, url) in enumerate(pages)
    ]


def web_citation(url: str, title: str, cited_text: str) -> dict[str, Any]:
    return {
        "type": "web_search_result_location",
        "cited_text": cited_text,
        "url": url,
        "title": title,
        "encrypted_index": f"Eo8BCioIAhgBIiQyYjQ0OWJmZi1l{len(cited_text)}",
    }


@dataclass(frozen=True)
class Whole(Block):
    """A block that arrives whole in its `content_block_start`, with no deltas:
    what a server tool's result (`web_search_tool_result`) looks like on the wire."""

    block: dict[str, Any]

    async def play(self, exchange: _Exchange, index: int) -> None:
        await exchange.event("content_block_start", index=index, content_block=self.block)


@dataclass(frozen=True)
class Reply:
    """One scripted answer to one chat request; build it with the constructors below."""

    label: str
    play: Callable[[_Exchange], Awaitable[None]] = field(repr=False, compare=False)

    @staticmethod
    def text(
        chunks: list[str],
        *,
        delay: float = 0.0,
        first_delay: float = 0.0,
        input_tokens: int | None = _DEFAULT_INPUT_TOKENS,
        output_tokens: int | None = None,
        stop_reason: str = "end_turn",
    ) -> Reply:
        """A complete stream, one text delta per chunk.

        ``first_delay`` comes before the first delta (time to first token),
        ``delay`` between the others; output tokens default to one per chunk.
        """

        async def play(exchange: _Exchange) -> None:
            await exchange.begin(input_tokens)
            await exchange.text_deltas(chunks, delay=delay, first_delay=first_delay)
            tokens = len(chunks) if output_tokens is None else output_tokens
            await exchange.finish_message(tokens, stop_reason)

        return Reply(f"text({chunks!r})", play)

    @staticmethod
    def blocks(
        *blocks: Block,
        stop_reason: str = "end_turn",
        input_tokens: int | None = _DEFAULT_INPUT_TOKENS,
        output_tokens: int = 5,
    ) -> Reply:
        """A message of several content blocks (text, thinking, tool use), in order."""

        async def play(exchange: _Exchange) -> None:
            await exchange.open()
            await exchange.start_message(input_tokens)
            for index, block in enumerate(blocks):
                await block.play(exchange, index)
                await exchange.event("content_block_stop", index=index)
            delta = {"stop_reason": stop_reason, "stop_sequence": None}
            usage = exchange.usage(output_tokens=output_tokens)
            await exchange.event("message_delta", delta=delta, usage=usage)
            await exchange.event("message_stop")

        return Reply(f"blocks({blocks!r}, {stop_reason!r})", play)

    @staticmethod
    def recorded(name: str) -> Reply:
        """Replay ``{name}.sse`` from the shared recordings, byte for byte
        (see ``_split_events`` for the one byte added).

        The file is read now, so a wrong name fails in the test, not in the server.
        """
        data = (RECORDED_STREAMS / f"{name}.sse").read_bytes()

        async def play(exchange: _Exchange) -> None:
            await exchange.open()
            for event in _split_events(data):
                await exchange.write(event)

        return Reply(f"recorded({name!r})", play)

    @staticmethod
    def endless(*, chunk: str = "tick ", delay: float = 0.02) -> Reply:
        """Stream deltas until the client closes: for cancel tests."""

        async def play(exchange: _Exchange) -> None:
            await exchange.begin()
            while True:
                await exchange.text_deltas([chunk])
                await exchange.pause(delay)

        return Reply(f"endless({chunk!r})", play)

    @staticmethod
    def http_error(
        status: int,
        *,
        error_type: str,
        message: str = "Fake upstream error",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Refuse before any stream opens, e.g. 429 ``rate_limit_error`` with
        ``{"retry-after": "7"}``, 529 ``overloaded_error``, 500 ``api_error``."""

        async def play(exchange: _Exchange) -> None:
            exchange.response = _error_response(
                status, error_type, message, exchange.request_id, headers
            )

        return Reply(f"http_error({status}, {error_type!r})", play)

    @staticmethod
    def drop_after(chunks: list[str], *, delay: float = 0.0) -> Reply:
        """Send these deltas, then abort the TCP connection mid-body."""

        async def play(exchange: _Exchange) -> None:
            await exchange.begin()
            await exchange.text_deltas(chunks, delay=delay)
            await exchange.abort()

        return Reply(f"drop_after({chunks!r})", play)

    @staticmethod
    def error_event(
        chunks: list[str], *, error_type: str = "overloaded_error", message: str = "Overloaded"
    ) -> Reply:
        """Send these deltas, then an ``event: error`` and end: how the API
        reports a failure after it has answered 200."""

        async def play(exchange: _Exchange) -> None:
            await exchange.begin()
            await exchange.text_deltas(chunks)
            await exchange.event("error", error={"type": error_type, "message": message})

        return Reply(f"error_event({chunks!r}, {error_type!r})", play)

    @staticmethod
    def stall(seconds: float) -> Reply:
        """Send headers and ``message_start``, then nothing for ``seconds``,
        then end normally with no text: for upstream time-out tests."""

        async def play(exchange: _Exchange) -> None:
            await exchange.open()
            await exchange.start_message(_DEFAULT_INPUT_TOKENS)
            await exchange.pause(seconds)
            await exchange.start_text_block()
            await exchange.finish_message(0, "end_turn")

        return Reply(f"stall({seconds})", play)


class FakeAnthropic:
    """The fake upstream: one aiohttp server on a free loopback port.

    Every instance has its own script and records, so nothing leaks between tests.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.title_requests: list[RecordedRequest] = []
        self.count_requests: list[dict[str, Any]] = []
        # What every title request gets; a test may make it slow or failing.
        self.title_reply = Reply.text([TITLE_TEXT])
        self._script: deque[Reply] = deque()
        self.issued: dict[str, dict[str, Any]] = {}
        self.cache = PromptCache()  # what requests read from and write to the prompt cache
        # script() and clear() may come from the test's thread while the fake
        # serves from its own (running_in_thread).
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeAnthropic is not running: await start() first")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._handle_messages)
        app.router.add_post("/v1/messages/count_tokens", self._handle_count)
        runner = web.AppRunner(app, shutdown_timeout=_SHUTDOWN_SECONDS)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runner = runner
        self._port = runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self._port = None

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next chat requests, first in first out."""
        with self._lock:
            self._script.extend(replies)

    def clear(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.title_requests.clear()
            self.count_requests.clear()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[FakeAnthropic]:
        """Serve from a thread of its own, for sync tests (Playwright) whose
        main thread blocks and so cannot run an event loop for the fake."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-anthropic", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=10)
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.close(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    async def _handle_count(self, request: web.Request) -> web.Response:
        request_id = f"req_fake_{next(self._ids)}"
        body = await _json_body(request, request_id)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return _error_response(
                400, "invalid_request_error", "model: Field required", request_id
            )
        headers = {name.lower(): value for name, value in request.headers.items()}
        problem = check_request(body, self.issued, headers)
        blocks = [
            block
            for message in body.get("messages") or []
            if isinstance(message.get("content"), list)
            for block in message["content"]
        ]
        if not body.get("tools") and any(
            b.get("type") in ("tool_use", "tool_result") for b in blocks
        ):
            problem = "Requests which include `tool_use` or `tool_result` blocks must define tools."
        if problem is not None:
            return _error_response(400, "invalid_request_error", problem, request_id)
        with self._lock:
            self.count_requests.append(body)
        return web.json_response(
            {"input_tokens": prompt_tokens(body)}, headers={"request-id": request_id}
        )

    async def _handle_messages(self, request: web.Request) -> web.StreamResponse:
        request_id = f"req_fake_{next(self._ids)}"
        body = await _json_body(request, request_id)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body, dict) or body.get("stream") is not True:
            # The service always streams; a non-streaming call is a bug to surface.
            message = "this fake serves only stream: true"
            return _error_response(400, "invalid_request_error", message, request_id)

        headers = {name.lower(): value for name, value in request.headers.items()}
        record = RecordedRequest(body=body, headers=headers)
        exchange = _Exchange(request, record, request_id, self.issued)
        reply = self._next_reply(record)
        record.rejected = check_request(body, self.issued, headers)
        if record.rejected is not None:
            record.finished.set()
            return _error_response(400, "invalid_request_error", record.rejected, request_id)
        exchange.billing = record.billing = self.cache.account(body)
        try:
            await reply.play(exchange)
        except _ClientGone:
            record.closed_at = time.monotonic()
            record.closed_by_client.set()
        finally:
            record.finished.set()
        assert exchange.response is not None
        return exchange.response

    def _next_reply(self, record: RecordedRequest) -> Reply:
        """Record the request and pick its reply; title requests leave the
        script alone so that a script describes only chat turns."""
        with self._lock:
            if _is_title_request(record.body):
                self.title_requests.append(record)
                return self.title_reply
            self.requests.append(record)
            if self._script:
                return self._script.popleft()
        return Reply.text(_split_in_three("Echo: " + _last_user_text(record.body)))


async def _json_body(request: web.Request, request_id: str) -> Any:
    """The request's JSON, or the API's 400 for a body that is not JSON."""
    try:
        return await request.json()
    except ValueError:
        return _error_response(400, "invalid_request_error", "body is not JSON", request_id)


def _error_response(
    status: int,
    error_type: str,
    message: str,
    request_id: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }
    return web.json_response(
        body, status=status, headers={"request-id": request_id, **(headers or {})}
    )


def _split_events(data: bytes) -> list[bytes]:
    """Cut a recording after each blank line, so each event is written (and
    counted) alone, with the bytes of the file.

    The stored files end their last event with one newline, not the blank line
    the API sends; an SSE parser then drops that event (``message_stop``), so
    the blank line is put back.
    """
    if not data.endswith(b"\n\n"):
        data = data.rstrip(b"\n") + b"\n\n"
    return [event for event in re.split(rb"(?<=\n\n)", data) if event]


def _is_title_request(body: dict[str, Any]) -> bool:
    system = body.get("system", "")
    if isinstance(system, list):
        system = " ".join(str(block.get("text", "")) for block in system)
    return TITLE_MARKER in str(system).lower()


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") != "user":
            continue
        content = message.get("content", "")
        if isinstance(content, str):
            return content
        return "".join(block.get("text", "") for block in content if block.get("type") == "text")
    return ""


def _split_in_three(text: str) -> list[str]:
    size = max(1, -(-len(text) // 3))
    return [text[start : start + size] for start in range(0, len(text), size)]


_TOOL_RESULT_FIELDS = {"type", "tool_use_id", "content", "is_error", "cache_control"}
# Server tool types, and the `anthropic-beta` each needs (None: generally available).
SERVER_TOOLS = {"web_search_20250305": None, "web_fetch_20250910": "web-fetch-2025-09-10"}


def _check_server_tool(tool: dict[str, Any], headers: dict[str, str]) -> str | None:
    beta = SERVER_TOOLS[tool["type"]]
    if beta is not None and beta not in headers.get("anthropic-beta", "").split(","):
        return f"tools: {tool['type']} needs the anthropic-beta header {beta}"
    if "allowed_domains" in tool and "blocked_domains" in tool:
        return "tools: allowed_domains and blocked_domains cannot both be set"
    if not isinstance(tool.get("max_uses", 1), int) or tool.get("max_uses", 1) < 1:
        return "tools: max_uses must be a positive integer"
    return None


def _same(block: dict[str, Any], issued: dict[str, Any] | None) -> bool:
    """Byte for byte, key order included: what the service stores must go back unchanged."""
    return issued is not None and json.dumps(block) == json.dumps(issued)


def _changed_server_block(block: dict[str, Any], issued: dict[str, dict[str, Any]]) -> bool:
    kind = block.get("type", "")
    if kind == "server_tool_use":
        return not _same(block, issued.get(f"server_tool_use:{block.get('id')}"))
    if kind.endswith("_tool_result") and kind != "tool_result":
        return not _same(block, issued.get(f"{kind}:{block.get('tool_use_id')}"))
    if kind == "text":
        cited = block.get("citations") or []
        return any(not _same(c, issued.get(json.dumps(c))) for c in cited)
    return False


def check_request(
    body: dict[str, Any], issued: dict[str, dict[str, Any]], headers: dict[str, str] | None = None
) -> str | None:
    """What the real API would refuse in a request, as its message; None when valid."""
    marks = check_breakpoints(body)
    if marks:
        return marks
    thinking = body.get("thinking")
    if thinking is not None:
        budget = thinking.get("budget_tokens")
        if thinking.get("type") != "enabled" or not isinstance(budget, int) or budget < 1024:
            return "thinking.budget_tokens: must be an integer of at least 1024"
        if budget >= int(body.get("max_tokens", 0)):
            return "max_tokens must be greater than thinking.budget_tokens"
    for tool in body.get("tools") or []:
        if tool.get("type") in SERVER_TOOLS:
            problem = _check_server_tool(tool, headers or {})
            if problem:
                return problem
            continue
        if not tool.get("name") or tool.get("input_schema", {}).get("type") != "object":
            return f"tools: invalid tool definition {tool!r}"
    messages = body.get("messages") or []
    if not messages or messages[0].get("role") != "user":
        return "messages: the first message must use the user role"
    media = check_media(messages)  # image and document blocks: types, base64, sizes
    if media is not None:
        return media
    asked: list[str] = []  # tool_use ids of the previous assistant message
    for number, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if number and role == messages[number - 1].get("role"):
            return f"messages.{number}: roles must alternate between user and assistant"
        blocks = [] if isinstance(content, str) else list(content or [])
        if isinstance(content, str) and not content:
            return f"messages.{number}: content must not be empty"
        if role == "user":
            results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
            leading = [b.get("tool_use_id") for b in blocks[: len(asked)]]
            if asked and (sorted(leading) != sorted(asked) or len(results) != len(asked)):
                return (
                    f"messages.{number}: tool_use ids {asked} must each have a tool_result "
                    "block at the start of the next user message"
                )
            if not asked and results:
                return f"messages.{number}: tool_result blocks answer no tool_use"
            for block in blocks:
                extra = set(block) - _TOOL_RESULT_FIELDS
                if block.get("type") == "tool_result" and extra:
                    return f"messages.{number}: tool_result: extra inputs {sorted(extra)}"
            asked = []
            continue
        asked = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
        for block in blocks:
            kind = block.get("type")
            if kind == "text" and not block.get("text"):
                return f"messages.{number}: text content blocks must be non-empty"
            if kind == "thinking" and issued.get(block.get("signature", "")) != block:
                return f"messages.{number}: thinking block modified or signature invalid"
            if kind == "redacted_thinking" and issued.get(block.get("data", "")) != block:
                return f"messages.{number}: redacted_thinking block modified"
            if kind == "tool_use" and not isinstance(block.get("input"), dict):
                return f"messages.{number}: tool_use.input must be an object"
            if _changed_server_block(block, issued):
                return f"messages.{number}: {kind} block modified or never issued"
    if asked:
        return "the last assistant message has tool_use blocks without tool_result"
    return None
