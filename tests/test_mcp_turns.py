"""MCP tools through whole turns over WebSocket: a server that crashes, hangs, or is cancelled.

The hub's own behaviour is in test_mcp.py; here a client starts a turn, the
fake model asks for the MCP tool, and the test checks what the client sees,
what went back to the model, and that the server still serves afterwards.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Service, eventually, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply, ToolUse

TRACKER = Path(__file__).parent / "mcp_servers" / "tracker.py"


def tool_round(tool_id: str, name: str, arguments: dict[str, Any] | None = None) -> Reply:
    return Reply.blocks(ToolUse(tool_id, name, arguments or {}), stop_reason="tool_use")


def result_of(frames: list[dict[str, Any]]) -> dict[str, Any]:
    return next(f for f in frames if f["type"] == "turn.tool_result")


def sent_back(fake: FakeAnthropic) -> dict[str, Any]:
    """The tool_result block of the last request the model got."""
    block: dict[str, Any] = fake.requests[-1].sent["messages"][-1]["content"][0]
    assert block["type"] == "tool_result"
    return block


@pytest.fixture
async def tracked(service: Service, tmp_path: Path) -> Service:
    """The service with the tracker over stdio, and a copy whose calls time out at 0.5 s."""
    tracker = {"transport": "stdio", "command": sys.executable, "args": [str(TRACKER)]}
    servers = tmp_path / "mcp.json"
    servers.write_text(
        json.dumps(
            {"servers": {"tracker": tracker, "quick": tracker | {"call_timeout_seconds": 0.5}}}
        )
    )
    await service.reconfigure(
        MCP_SERVERS_FILE=str(servers), TOOL_TIMEOUT_SECONDS="10", MCP_HEALTH_CHECK_SECONDS="0.5"
    )
    return service


async def test_a_server_that_crashes_mid_call_is_an_error_result_and_the_turn_goes_on(
    tracked: Service, fake: FakeAnthropic
) -> None:
    fake.script(tool_round("toolu_c1", "tracker__crash"), Reply.text(["The tracker failed."]))
    ws = await tracked.ws()

    frames = await ws.turn("Crash the tracker")

    assert frames[-1]["type"] == "turn.done", frames[-1]
    result = result_of(frames)
    assert (result["name"], result["status"]) == ("tracker__crash", "error")
    assert sent_back(fake)["is_error"] is True
    assert frames[-1]["message"]["content"] == "The tracker failed."

    # The crashed server is started again; a later turn's call is answered.
    async def served() -> dict[str, Any] | None:
        fake.script(tool_round(f"toolu_{new_turn_id()[:8]}", "tracker__pid"), Reply.text(["Ok."]))
        answered = result_of(await ws.turn("Its pid?"))
        return answered if answered["status"] == "ok" else None

    assert await eventually(served, timeout=15, interval=0.2), "the tracker was not restarted"
    await ws.close()


async def test_a_server_that_hangs_times_out_and_the_turn_goes_on(
    tracked: Service, fake: FakeAnthropic
) -> None:
    fake.script(tool_round("toolu_h1", "quick__slow", {"seconds": 30}), Reply.text(["Too slow."]))
    ws = await tracked.ws()

    frames = await ws.turn("Something slow")

    assert frames[-1]["type"] == "turn.done", frames[-1]
    result = result_of(frames)
    assert (result["name"], result["status"]) == ("quick__slow", "timeout")
    assert result["preview"] == "quick__slow timed out after 0.5 s"
    assert sent_back(fake)["is_error"] is True
    await ws.close()


async def test_cancel_during_an_mcp_call_abandons_it_and_the_server_keeps_serving(
    tracked: Service, fake: FakeAnthropic, tmp_path: Path
) -> None:
    marker = tmp_path / "cancelled"
    fake.script(tool_round("toolu_x1", "tracker__slow", {"seconds": 30, "marker": str(marker)}))
    ws = await tracked.ws()
    turn_id = new_turn_id()
    await ws.send({"type": "turn.start", "turn_id": turn_id, "content": "Slow, then stop"})
    await ws.until("turn.tool_call")

    await ws.send({"type": "turn.cancel", "turn_id": turn_id})
    frames = await ws.until("turn.cancelled", "turn.done", "turn.error", timeout=5)

    assert frames[-1]["type"] == "turn.cancelled", frames[-1]
    assert result_of(frames)["status"] == "cancelled"

    async def server_saw_it() -> bool:
        return marker.exists()

    assert await eventually(server_saw_it), "the MCP request was not cancelled"
    fake.script(
        tool_round("toolu_x2", "tracker__create_task", {"title": "next"}), Reply.text(["."])
    )
    conversation_id = frames[-1]["message"]["conversation_id"]
    after = await ws.turn("Now a quick one", conversation_id=conversation_id)
    assert after[-1]["type"] == "turn.done", after[-1]
    assert (result_of(after)["status"], sent_back(fake)["content"]) == ("ok", "created 'next'")
    await ws.close()
