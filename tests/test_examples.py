"""The shipped examples keep working: the notes MCP server, through the example servers file.

The service starts with `examples/mcp-servers.toml` exactly as written (from the
repository's root, with this interpreter first on PATH as an active virtual
environment would put it), and the model's calls reach the notes server as
each caller.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Service, make_token, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply, ToolUse

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mcp-servers.toml"


async def call(ws: Any, fake: FakeAnthropic, name: str, arguments: dict[str, Any]) -> str:
    """One turn in which the model calls `name`; what the tool answered."""
    tool_id = f"toolu_{new_turn_id()[:8]}"
    fake.script(
        Reply.blocks(ToolUse(tool_id, name, arguments), stop_reason="tool_use"),
        Reply.text(["Done."]),
    )
    frames = await ws.turn(f"Use {name}")
    assert frames[-1]["type"] == "turn.done", frames[-1]
    result = next(f for f in frames if f["type"] == "turn.tool_result")
    assert result["status"] == "ok", result
    answer: str = fake.requests[-1].sent["messages"][-1]["content"][0]["content"]
    return answer


async def test_the_example_notes_server_runs_from_the_example_servers_file(
    service: Service, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    await service.reconfigure(MCP_SERVERS_FILE=str(EXAMPLE))
    alice, bob = await service.ws("alice"), await service.ws("bob")

    saved = await call(alice, fake, "notes__add_note", {"title": "Soup", "text": "Leek and potato"})
    assert saved == "Saved note 'Soup'."
    offered = {tool["name"] for tool in fake.requests[-1].body["tools"]}
    assert {"notes__add_note", "notes__list_notes", "notes__find_notes"} <= offered

    assert (
        await call(alice, fake, "notes__find_notes", {"query": "LEEK"}) == "Soup: Leek and potato"
    )
    assert await call(bob, fake, "notes__list_notes", {}) == "No notes yet."
    await alice.close()
    await bob.close()


async def test_the_terminal_chat_streams_answers_in_one_conversation(
    service: Service, fake: FakeAnthropic
) -> None:
    """examples/terminal_chat.py, run as its docstring says, a line typed per question."""
    fake.script(Reply.text(["Leek ", "soup."]), Reply.text(["With ", "bread."]))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "clients" / "python"),
        "CHAT_TOKEN": make_token("alice"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "terminal_chat.py"),
        str(service.http.make_url("")).rstrip("/"),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(b"A soup?\n\nAnd with it?\n"), 30)
    assert process.returncode == 0, err.decode()
    assert out.decode().splitlines() == ["Leek soup.", "With bread."]
    # One conversation: the second question was asked with the first exchange before it.
    assert len(fake.requests[-1].sent["messages"]) == 3
    assert await service.db.conversations.count_documents({}) == 1
