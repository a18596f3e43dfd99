"""The raw model stream: SSE framing and the event fold, against the SDK's own fold.

These are pure layers (bytes in, chunks and blocks out), so they are tested
directly, on the recorded real streams and on a thinking stream in the real
wire format, cut into chunks of every size the network may deliver. The
oracle is the official SDK's `accumulate_event` folding the same events.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event

from server.errors import UpstreamUnavailable
from server.model.assembler import MessageAssembler
from server.model.base import TextChunk
from server.model.sse import SSEFramer
from tests.fake_anthropic import RECORDED_STREAMS

RECORDED = ["basic", "tool_use", "refusal", "extra_fields"]
CHUNK_SIZES = [1, 3, 17, 64, 1 << 20]


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events
    )


THINKING = sse(
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 1},
        },
    },
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "Let me think, "},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "step by step."},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
    },
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "text_delta", "text": "The answer "},
    },
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "is 4. ✓"}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 42},
    },
    {"type": "message_stop"},
)


def stream_bytes(name: str) -> bytes:
    return THINKING if name == "thinking" else (RECORDED_STREAMS / f"{name}.sse").read_bytes()


def fold(raw: bytes, size: int) -> tuple[str, MessageAssembler]:
    framer, message, text = SSEFramer(), MessageAssembler(), []
    for start in range(0, len(raw), size):
        for data in framer.feed(raw[start : start + size]):
            chunk = message.feed(data)
            if isinstance(chunk, TextChunk):
                text.append(chunk.text)
    return "".join(text), message


def sdk_fold(raw: bytes) -> dict[str, Any]:
    snapshot, buffers = None, {}
    for data in SSEFramer().feed(raw + b"\n\n"):
        event = orjson.loads(data)
        if event["type"] in {"ping", "error"}:
            continue
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
    assert snapshot is not None
    dumped: dict[str, Any] = snapshot.model_dump(mode="json", exclude_none=True)
    return dumped


@pytest.mark.parametrize("size", CHUNK_SIZES)
@pytest.mark.parametrize("name", [*RECORDED, "thinking"])
def test_the_fold_matches_the_sdks_at_any_chunking(name: str, size: int) -> None:
    raw = stream_bytes(name)
    text, message = fold(raw, size)
    expected = sdk_fold(raw)
    finished = message.finished()

    assert finished.stop_reason == expected["stop_reason"]
    assert finished.output_tokens == expected["usage"]["output_tokens"]
    assert finished.input_tokens == expected["usage"]["input_tokens"]
    assert text == "".join(b.get("text", "") for b in expected["content"] if b["type"] == "text")
    for ours, theirs in zip(finished.content, expected["content"], strict=True):
        for field in ("type", "text", "thinking", "signature", "input", "id", "name"):
            assert ours.get(field) == theirs.get(field), (name, field)


def test_crlf_and_multi_line_data_are_framed_per_the_sse_rules() -> None:
    framer = SSEFramer()
    assert framer.feed(b': comment\r\nevent: x\r\ndata: {"a":\r\ndata: 1}\r\n\r\nda') == [
        b'{"a":\n1}'
    ]
    assert framer.feed(b"ta: {}\n\n") == [b"{}"]


def test_a_tool_input_that_is_not_json_is_kept_for_the_tool_loop() -> None:
    raw = sse(
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"a": '},
        },
        {"type": "content_block_stop", "index": 0},
    )
    _, message = fold(raw, 5)
    (block,) = message.finished().content
    assert block["input"] == {}
    assert block["input_error"] == '{"a": '


def test_an_error_event_mid_stream_is_a_domain_failure() -> None:
    raw = sse(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    with pytest.raises(UpstreamUnavailable):
        fold(raw, 8)
