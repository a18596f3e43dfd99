"""Anthropic's server tools (web search, web fetch): offered by configuration, relayed, stored,
and sent back to the model unchanged.

The fake upstream streams them in the real wire format (Anthropic's documented
web search example) and refuses a request whose server blocks or citations
differ by a byte from what it issued.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.config import load_settings
from server.startup_errors import ConfigError
from tests.conftest import Service, frame_types, new_turn_id, text_of
from tests.fake_anthropic import (
    CitedText,
    FakeAnthropic,
    Reply,
    ServerToolResult,
    ServerToolUse,
    Text,
    search_results,
    web_citation,
)
from tests.sse_client import SseReader

RESULTS = search_results(
    ("Quantum Computing Breakthroughs in 2025", "https://example.com/quantum"),
    ("IBM unveils a new processor", "https://example.org/ibm"),
)
CITATION = web_citation(
    "https://example.com/quantum",
    "Quantum Computing Breakthroughs in 2025",
    "Error correction reached a new milestone.",
)


def search_turn(*, stop_reason: str = "end_turn") -> Reply:
    """Text, a search and its results, then cited text: one message, as the API sends it."""
    return Reply.blocks(
        Text(["I'll search for that. "]),
        ServerToolUse("srvtoolu_01", input={"query": "quantum computing 2025"}),
        ServerToolResult("srvtoolu_01", RESULTS),
        CitedText([CITATION], ["Error correction ", "improved."]),
        stop_reason=stop_reason,
    )


EXPECTED_BLOCKS: list[dict[str, Any]] = [
    {"type": "text", "text": "I'll search for that. "},
    {
        "type": "server_tool_use",
        "id": "srvtoolu_01",
        "name": "web_search",
        "input": {"query": "quantum computing 2025"},
    },
    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": RESULTS},
    {"type": "text", "text": "Error correction improved.", "citations": [CITATION]},
]


# What a client sees of `search_turn()`, a run of deltas as one.
SEARCH_EVENTS = [
    "turn.started",
    "turn.delta",
    "turn.tool_call",
    "turn.tool_result",
    "turn.citation",
    "turn.delta",
    "turn.done",
]


@pytest.fixture
async def searching(service: Service) -> Service:
    await service.reconfigure(WEB_SEARCH="on", WEB_SEARCH_MAX_USES="3")
    return service


async def test_a_web_search_turn_is_relayed_stored_and_sent_back_byte_identical(
    searching: Service, fake: FakeAnthropic
) -> None:
    fake.script(search_turn())
    ws = await searching.ws()
    turn_id = new_turn_id()

    frames = await ws.turn("What happened in quantum computing?", turn_id=turn_id)

    assert frame_types(frames) == SEARCH_EVENTS
    call, result, citation = (
        next(f for f in frames if f["type"] == kind)
        for kind in ("turn.tool_call", "turn.tool_result", "turn.citation")
    )
    assert (call["id"], call["name"], call["input"], call["server"]) == (
        "srvtoolu_01",
        "web_search",
        {"query": "quantum computing 2025"},
        True,
    )
    assert (result["id"], result["name"], result["status"], result["server"]) == (
        "srvtoolu_01",
        "web_search",
        "ok",
        True,
    )
    assert result["preview"] == (
        "Quantum Computing Breakthroughs in 2025 (https://example.com/quantum); "
        "IBM unveils a new processor (https://example.org/ibm)"
    )
    assert citation["block"] == 3
    assert citation["citation"] == {
        "type": "web_search_result_location",
        "url": "https://example.com/quantum",
        "title": "Quantum Computing Breakthroughs in 2025",
        "cited_text": "Error correction reached a new milestone.",
    }
    assert text_of(frames) == "I'll search for that. Error correction improved."
    done = frames[-1]
    assert done["message"]["blocks"] == EXPECTED_BLOCKS
    assert done["message"]["blocks"][citation["block"]]["citations"] == [CITATION]

    stored = await searching.db.messages.find_one({"turn_id": turn_id, "role": "assistant"})
    assert stored["blocks"] == EXPECTED_BLOCKS
    # Byte for byte, key order included, opaque fields kept.
    assert json.dumps(stored["blocks"]) == json.dumps(EXPECTED_BLOCKS)

    # The next turn sends the whole answer back as one assistant message, unchanged.
    fake.script(Reply.text(["Sure."]))
    follow_up = await ws.turn("Tell me more.", conversation_id=done["message"]["conversation_id"])
    assert follow_up[-1]["type"] == "turn.done", follow_up[-1]
    request = fake.requests[-1]
    assert request.rejected is None
    sent_back = request.sent["messages"][1]
    assert sent_back["role"] == "assistant"
    assert json.dumps(sent_back["content"]) == json.dumps(EXPECTED_BLOCKS)
    await ws.close()


async def test_the_same_turn_over_sse_and_its_replay(
    searching: Service, fake: FakeAnthropic
) -> None:
    fake.script(search_turn())
    turn_id = new_turn_id()
    body = {"turn_id": turn_id, "content": "Quantum news?"}
    headers = searching.headers()
    async with searching.http.post("/api/turns", json=body, headers=headers) as response:
        events = await SseReader(response).until()
    live = [e.data for e in events]
    assert frame_types(live) == SEARCH_EVENTS
    assert [e.event for e in events] == [f["type"] for f in live]

    # A replay of the finished turn tells the same story from the stored blocks.
    async with searching.http.post("/api/turns", json=body, headers=headers) as response:
        replayed = [e.data for e in await SseReader(response).until()]
    told = ("turn.tool_call", "turn.tool_result", "turn.citation")
    assert [{**f, "seq": 0} for f in replayed if f["type"] in told] == [
        {**f, "seq": 0} for f in live if f["type"] in told
    ]
    assert replayed[-1]["message"] == live[-1]["message"]


async def test_a_search_error_inside_the_result_block_is_an_error_result(
    searching: Service, fake: FakeAnthropic
) -> None:
    error = {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}
    fake.script(
        Reply.blocks(
            ServerToolUse("srvtoolu_02", input={"query": "again"}),
            ServerToolResult("srvtoolu_02", error),
            Text(["I could not search again."]),
        )
    )
    ws = await searching.ws()

    frames = await ws.turn("Search once more")

    result = next(f for f in frames if f["type"] == "turn.tool_result")
    assert (result["status"], result["preview"], result["server"]) == (
        "error",
        "error: max_uses_exceeded",
        True,
    )
    assert frames[-1]["type"] == "turn.done"
    assert frames[-1]["message"]["blocks"][1]["content"] == error
    await ws.close()


async def test_pause_turn_during_a_search_continues_by_itself(
    searching: Service, fake: FakeAnthropic
) -> None:
    fake.script(
        Reply.blocks(
            Text(["Searching. "]),
            ServerToolUse("srvtoolu_03", input={"query": "long"}),
            ServerToolResult("srvtoolu_03", RESULTS),
            stop_reason="pause_turn",
        ),
        Reply.blocks(CitedText([CITATION], ["Found it."])),
    )
    ws = await searching.ws()

    frames = await ws.turn("A long search")

    assert frames[-1]["type"] == "turn.done", frames[-1]
    assert frames[-1]["stop_reason"] == "end_turn"
    assert text_of(frames) == "Searching. Found it."
    first, second = fake.requests
    assert second.rejected is None
    # The paused message goes back as the last (assistant) message, to be continued.
    assert second.sent["messages"][-1]["role"] == "assistant"
    assert [b["type"] for b in second.sent["messages"][-1]["content"]] == [
        "text",
        "server_tool_use",
        "web_search_tool_result",
    ]
    assert second.sent["tools"] == first.sent["tools"]
    citation = next(f for f in frames if f["type"] == "turn.citation")
    assert frames[-1]["message"]["blocks"][citation["block"]]["text"] == "Found it."
    await ws.close()


async def test_server_tools_are_off_by_default(service: Service, fake: FakeAnthropic) -> None:
    ws = await service.ws()
    await ws.turn("Hello")
    offered = fake.requests[-1].sent["tools"]
    assert not [t for t in offered if "type" in t]
    assert "anthropic-beta" not in fake.requests[-1].headers
    await ws.close()


async def test_settings_decide_what_is_offered(service: Service, fake: FakeAnthropic) -> None:
    await service.reconfigure(
        WEB_SEARCH="on",
        WEB_SEARCH_ALLOWED_DOMAINS="example.com, docs.example.org/api",
        WEB_FETCH="on",
        WEB_FETCH_MAX_USES="2",
        WEB_FETCH_BLOCKED_DOMAINS="private.example.com",
    )
    ws = await service.ws()
    assert (await ws.turn("Hello"))[-1]["type"] == "turn.done"

    request = fake.requests[-1]
    assert request.rejected is None
    server_tools = [t for t in request.sent["tools"] if "type" in t]
    assert server_tools == [
        {
            "type": "web_search_20250305",
            "name": "web_search",
            "max_uses": 5,
            "allowed_domains": ["example.com", "docs.example.org/api"],
        },
        {
            "type": "web_fetch_20250910",
            "name": "web_fetch",
            "max_uses": 2,
            "blocked_domains": ["private.example.com"],
            "citations": {"enabled": True},
        },
    ]
    assert request.headers["anthropic-beta"] == "web-fetch-2025-09-10"
    await ws.close()


async def test_a_fetch_result_is_relayed_with_its_page(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(WEB_FETCH="on")
    page = {
        "type": "web_fetch_result",
        "url": "https://example.com/article",
        "content": {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "Full text."},
            "title": "An Article",
            "citations": {"enabled": True},
        },
        "retrieved_at": "2025-08-25T10:30:00Z",
    }
    failed = {"type": "web_fetch_tool_error", "error_code": "url_not_accessible"}
    fake.script(
        Reply.blocks(
            ServerToolUse("srvtoolu_04", "web_fetch", {"url": "https://example.com/article"}),
            ServerToolResult("srvtoolu_04", page, type="web_fetch_tool_result"),
            ServerToolUse("srvtoolu_05", "web_fetch", {"url": "https://example.com/gone"}),
            ServerToolResult("srvtoolu_05", failed, type="web_fetch_tool_result"),
            Text(["Read one of two."]),
        )
    )
    ws = await service.ws()

    frames = await ws.turn("Read these")

    results = [f for f in frames if f["type"] == "turn.tool_result"]
    assert [(r["name"], r["status"], r["preview"]) for r in results] == [
        ("web_fetch", "ok", "An Article (https://example.com/article)"),
        ("web_fetch", "error", "error: url_not_accessible"),
    ]
    fake.script(Reply.text(["Ok."]))
    conversation_id = frames[-1]["message"]["conversation_id"]
    assert (await ws.turn("And?", conversation_id=conversation_id))[-1]["type"] == "turn.done"
    assert fake.requests[-1].rejected is None
    await ws.close()


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (
            {"WEB_SEARCH_ALLOWED_DOMAINS": "a.com", "WEB_SEARCH_BLOCKED_DOMAINS": "b.com"},
            "WEB_SEARCH_ALLOWED_DOMAINS and WEB_SEARCH_BLOCKED_DOMAINS: set one or the other",
        ),
        ({"WEB_SEARCH_MAX_USES": "0"}, "WEB_SEARCH_MAX_USES=0: must be between 1 and 100"),
        (
            {"WEB_SEARCH_ALLOWED_DOMAINS": "https://a.com"},
            "WEB_SEARCH_ALLOWED_DOMAINS: 'https://a.com' is not a domain",
        ),
        ({"WEB_SEARCH": "maybe"}, "WEB_SEARCH='maybe': expected on/off"),
    ],
    ids=["both-lists", "max-uses", "scheme", "flag"],
)
def test_bad_server_tool_settings_are_one_line(settings: dict[str, str], says: str) -> None:
    env = {"WEB_SEARCH": "on", **settings}
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert str(raised.value).startswith(says) and "\n" not in str(raised.value)


def test_lists_of_a_tool_that_is_off_are_not_read() -> None:
    settings = load_settings({"WEB_FETCH_ALLOWED_DOMAINS": "a.com", "WEB_FETCH_MAX_USES": "x"})
    assert settings.web_search is None and settings.web_fetch is None
