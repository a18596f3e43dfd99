"""A fake Anthropic Messages API that stamps every token: the bench's model.

It answers `POST /v1/messages` (`stream: true`) in the real wire format
(the event sequence of `tests/fake_anthropic.py`), with HTTP/1.1 chunked
responses and keep-alive, so the real SDK in the service and plain aiohttp
clients both read it. It is written on bare asyncio protocols, not aiohttp's
server, for two reasons the measurement needs: a token costs it a few
microseconds (one preformatted write, timed by `loop.call_at`, no task per
stream), so it can pace a thousand streams on a shared core; and a closed
connection is seen the moment the kernel reports it (`connection_lost`), so
"cancel → upstream closed" is measured to the millisecond, not to a poll.

What each request streams comes from its prompt (`bench.stamps.StreamSpec`).
`GET /bench/runs/<run>` tells the load generator what the fake saw of a run:
tokens written per stream, when each connection closed, and for endless
streams every stamp (to count tokens written after a cancel).
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from typing import Any

from bench.stamps import StreamSpec, arrival_text, now_us, token_text

BARRIER_TIMEOUT = 30.0  # a run whose requests are not all in by then streams anyway
UNPACED_BATCH = 32  # tokens written per loop turn when a stream is unpaced
WRITE_BUFFER_LIMIT = 256 * 1024  # an unpaced stream waits while its reader is this far behind
MAX_ENDLESS_TOKENS = 100_000
TITLE_TEXT = "Bench title"
GOLDEN = (math.sqrt(5) - 1) / 2

_DELTA_HEAD = (
    b"event: content_block_delta\ndata: "
    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'
)
_DELTA_TAIL = b'"}}\n\n'
_STREAM_HEADERS = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\nrequest-id: req_bench\r\n\r\n"
)


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(name: str, **fields: Any) -> bytes:
    data = json.dumps({"type": name, **fields}, separators=(",", ":"))
    return _chunk(f"event: {name}\ndata: {data}\n\n".encode())


@dataclass
class StreamRecord:
    """What the fake did for one request of a run."""

    arrival_us: int
    sent: int = 0
    closed_us: int | None = None  # the client closed the connection before the end
    stamps_us: list[int] = field(default_factory=list)  # endless streams only

    def to_json(self) -> dict[str, Any]:
        return {
            "arrival_us": self.arrival_us,
            "sent": self.sent,
            "closed_us": self.closed_us,
            "stamps_us": self.stamps_us,
        }


class _Run:
    """The streams of one workload phase, held back until `barrier` have arrived."""

    def __init__(self, barrier: int, loop: asyncio.AbstractEventLoop) -> None:
        self.barrier = barrier
        self.records: dict[str, StreamRecord] = {}
        self.waiting: list[_Stream] = []
        self.released = barrier <= 1
        self.max_lag_us = 0  # how late the fake wrote a token against its schedule
        self._timer = None if self.released else loop.call_later(BARRIER_TIMEOUT, self.release)

    def join(self, stream: _Stream) -> None:
        if self.released:
            stream.go(len(self.records))
            return
        self.waiting.append(stream)
        if len(self.records) >= self.barrier:
            self.release()

    def release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.released = True
        waiting, self.waiting = self.waiting, []
        for order, stream in enumerate(waiting):
            stream.go(order)

    def to_json(self) -> dict[str, Any]:
        return {
            "arrived": len(self.records),
            "max_lag_us": self.max_lag_us,
            "streams": {key: record.to_json() for key, record in self.records.items()},
        }


class _Stream:
    """One streamed answer: tokens written on schedule until done or the client leaves."""

    def __init__(self, connection: _Connection, spec: StreamSpec, run: _Run, record: StreamRecord):
        self.connection = connection
        self.spec = spec
        self.run = run
        self.record = record
        self.loop = asyncio.get_running_loop()
        self.index = 0
        self.start = 0.0
        self.handle: asyncio.TimerHandle | asyncio.Handle | None = None
        self.limit = MAX_ENDLESS_TOKENS if spec.endless else spec.tokens

    def go(self, order: int) -> None:
        """Start the tokens; paced streams are spread over one interval by arrival order,
        so a thousand streams do not all write in the same millisecond."""
        interval = 1 / self.spec.rate if self.spec.rate > 0 else 0.0
        self.start = self.loop.time() + (order * GOLDEN % 1.0) * interval
        self.handle = self.loop.call_at(self.start, self._tick)

    def _tick(self) -> None:
        transport = self.connection.transport
        if transport is None or transport.is_closing():
            return
        if self.spec.rate <= 0:
            self._burst(transport)
            return
        due = self.start + self.index / self.spec.rate
        lag = int((self.loop.time() - due) * 1e6)
        self.run.max_lag_us = max(self.run.max_lag_us, lag)
        self._write_token(transport)
        if self.index >= self.limit:
            self._finish(transport)
        else:
            self.handle = self.loop.call_at(self.start + self.index / self.spec.rate, self._tick)

    def _burst(self, transport: asyncio.Transport) -> None:
        if transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            self.handle = self.loop.call_later(0.001, self._tick)
            return
        for _ in range(UNPACED_BATCH):
            self._write_token(transport)
            if self.index >= self.limit:
                self._finish(transport)
                return
        self.handle = self.loop.call_soon(self._tick)

    def _write_token(self, transport: asyncio.Transport) -> None:
        stamp = now_us()
        text = token_text(self.index, stamp)
        if self.index == 0:
            text = arrival_text(self.record.arrival_us) + text
        payload = _DELTA_HEAD + text.encode() + _DELTA_TAIL
        transport.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.index += 1
        self.record.sent = self.index
        if self.spec.endless:
            self.record.stamps_us.append(stamp)

    def _finish(self, transport: asyncio.Transport) -> None:
        transport.write(_closing_events(self.index))
        self.connection.stream_ended()

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()


def _opening_events(model: str) -> bytes:
    message = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": model,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    return (
        _event("message_start", message=message)
        + _event("content_block_start", index=0, content_block={"type": "text", "text": ""})
        + _event("ping")
    )


def _closing_events(tokens: int) -> bytes:
    delta = {"stop_reason": "end_turn", "stop_sequence": None}
    return (
        _event("content_block_stop", index=0)
        + _event("message_delta", delta=delta, usage={"output_tokens": tokens})
        + _event("message_stop")
        + b"0\r\n\r\n"
    )


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: requests one after another, Content-Length bodies."""

    def __init__(self, upstream: StampingUpstream) -> None:
        self.upstream = upstream
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.stream: _Stream | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.record.closed_us = now_us()
            stream.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.stream is None and self.transport is not None:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            lines = self.buffer[:head_end].decode("latin-1").split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:])
            }
            length = int(headers.get("content-length", "0"))
            body_end = head_end + 4 + length
            if len(self.buffer) < body_end:
                return
            body, self.buffer = self.buffer[head_end + 4 : body_end], self.buffer[body_end:]
            method, path = ([*lines[0].split(), "", ""])[:2]
            self._handle(method, path, body)

    def stream_ended(self) -> None:
        self.stream = None
        if self.buffer:
            self.data_received(b"")

    def _handle(self, method: str, path: str, body: bytes) -> None:
        if method == "POST" and path.split("?")[0] == "/v1/messages":
            self._messages(json.loads(body or b"{}"))
        elif method == "GET" and path.startswith("/bench/runs/"):
            self._respond(200, self.upstream.run_report(path.removeprefix("/bench/runs/")))
        else:
            self._respond(404, {"type": "error", "error": {"type": "not_found_error"}})

    def _respond(self, status: int, document: Any) -> None:
        assert self.transport is not None
        body = json.dumps(document).encode()
        self.transport.write(
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, len(body), body)
        )

    def _messages(self, body: dict[str, Any]) -> None:
        assert self.transport is not None
        arrival = now_us()
        system = str(body.get("system", ""))
        spec = StreamSpec.from_prompt(_last_user_text(body))
        if "title" in system.lower() or spec is None:
            spec = StreamSpec(run="", key="", tokens=1, rate=0)  # titles and strays: one token
        self.transport.write(_STREAM_HEADERS + _opening_events(str(body.get("model", "fake"))))
        run = self.upstream.run(spec)
        record = StreamRecord(arrival)
        if spec.run:
            run.records[spec.key] = record
        self.stream = _Stream(self, spec, run, record)
        run.join(self.stream)


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content", "")
            if isinstance(content, str):
                return content
            return "".join(block.get("text", "") for block in content if isinstance(block, dict))
    return ""


class StampingUpstream:
    """The server; run it on the caller's loop (`start`) or in a process of its own."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> str:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), "127.0.0.1", port, backlog=4096
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.base_url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server.close_clients()
            await self._server.wait_closed()

    def run(self, spec: StreamSpec) -> _Run:
        run = self._runs.get(spec.run)
        if run is None or not spec.run:
            run = _Run(spec.barrier, asyncio.get_running_loop())
            if spec.run:
                self._runs[spec.run] = run
        return run

    def run_report(self, name: str) -> dict[str, Any]:
        run = self._runs.get(name)
        return run.to_json() if run is not None else {"arrived": 0, "streams": {}}
