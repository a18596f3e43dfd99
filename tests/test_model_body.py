"""The answer's body read straight from aiohttp, and through the SDK when it must be.

`server/model/body.py` reaches past the SDK's httpx layers into its aiohttp
transport, which the SDK may lay out differently in a later release: these
tests run the real SDK against a real HTTP server and check that the
unencoded stream is read directly (so an SDK upgrade that breaks the fast path
fails here, not silently in the bench) and that a gzip-encoded one, which only
httpx can decode, still arrives whole.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import aiohttp
import anthropic
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.config import load_settings
from server.model.base import TextChunk
from server.model.body import body_of
from server.model.claude import ClaudeModel
from tests.conftest import eventually

WORDS = [f"word{i} " for i in range(40)]
ARRIVED = web.AppKey("arrived", list[str])
RELEASE = web.AppKey("release", asyncio.Event)


def _answer() -> bytes:
    def event(kind: str, **fields: object) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields})

    message: dict[str, object] = {
        "id": "msg_body",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    events = [
        event("message_start", message=message),
        event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        *(
            event("content_block_delta", index=0, delta={"type": "text_delta", "text": word})
            for word in WORDS
        ),
        event("content_block_stop", index=0),
        event(
            "message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage={"output_tokens": len(WORDS)},
        ),
        event("message_stop"),
    ]
    return b"\n\n".join(events) + b"\n\n"


async def _messages(request: web.Request) -> web.StreamResponse:
    request.app[ARRIVED].append(request.path)
    await request.app[RELEASE].wait()
    body = _answer()
    headers = {"Content-Type": "text/event-stream"}
    if request.query.get("encoding") == "gzip":
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    for start in range(0, len(body), 97):  # many network reads, cut anywhere
        await response.write(body[start : start + 97])
    await response.write_eof()
    return response


@pytest.fixture
async def upstream() -> AsyncIterator[TestServer]:
    app = web.Application()
    app[ARRIVED], app[RELEASE] = [], asyncio.Event()
    app[RELEASE].set()  # answers at once unless a test holds them
    app.router.add_post("/v1/messages", _messages)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


def _model(upstream: TestServer, encoding: str | None, **env: str) -> ClaudeModel:
    base = str(upstream.make_url(""))
    settings = load_settings(
        {
            "ANTHROPIC_API_KEY": "test-key",
            "ANTHROPIC_BASE_URL": base,
            "UPSTREAM_MAX_RETRIES": "0",
            **env,
        }
    )
    model = ClaudeModel(settings)
    if encoding is not None:  # the SDK's own way to add a query parameter to every request
        model._client = model._client.with_options(default_query={"encoding": encoding})
    return model


async def _text(model: ClaudeModel) -> str:
    parts = []
    async for chunk in model.stream(
        model="claude-test",
        system=None,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=64,
    ):
        if isinstance(chunk, TextChunk):
            parts.append(chunk.text)
    return "".join(parts)


async def _body(model: ClaudeModel, *, direct: bool) -> bytes:
    """The raw body as `body_of` reads it, checking which way it was read."""
    async with model._client.messages.with_streaming_response.create(
        model="claude-test",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
    ) as response:
        chunks = body_of(response)
        read_directly = isinstance(chunks, aiohttp.streams.AsyncStreamIterator)
        assert read_directly is direct, (
            f"anthropic {anthropic.__version__} lays out its transport differently: "
            "server/model/body.py's fast read of the body no longer finds aiohttp's reader "
            "(answers still arrive, through the SDK, at ~5 us more a token); mend "
            "_aiohttp_reader for this release"
            if direct
            else "an encoded body was read past the decoder"
        )
        return b"".join([chunk async for chunk in chunks])


async def test_an_unencoded_answer_is_read_from_aiohttp_directly(upstream: TestServer) -> None:
    model = _model(upstream, None)
    try:
        assert await _body(model, direct=True) == _answer()
        assert await _text(model) == "".join(WORDS)
    finally:
        await model.close()


async def test_a_gzip_encoded_answer_is_decoded_by_the_sdk(upstream: TestServer) -> None:
    model = _model(upstream, "gzip")
    try:
        assert await _body(model, direct=False) == _answer()  # decoded by httpx
        assert await _text(model) == "".join(WORDS)
    finally:
        await model.close()


async def test_upstream_max_connections_caps_the_streams_one_process_holds(
    upstream: TestServer,
) -> None:
    """With a cap of 2, a third stream waits for a connection, then runs when one is free."""
    model = _model(upstream, None, UPSTREAM_MAX_CONNECTIONS="2")
    arrived, release = upstream.app[ARRIVED], upstream.app[RELEASE]
    release.clear()
    try:
        streams = [asyncio.create_task(_text(model)) for _ in range(3)]

        async def two_arrived() -> bool:
            return len(arrived) == 2

        assert await eventually(two_arrived)
        await asyncio.sleep(0.3)  # time for a third request, were it not held back
        assert len(arrived) == 2
        release.set()
        assert await asyncio.gather(*streams) == ["".join(WORDS)] * 3
        assert len(arrived) == 3
    finally:
        await model.close()
