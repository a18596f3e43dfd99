"""`GET /api/tools`: what a turn may use in this deployment, and where each tool comes from.

Against a real MCP server (the tracker, over stdio) and the operator's module of
the test tools (`CHAT_TOOLS=tests.tools_for_tests`), as the model is offered them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.conftest import Service
from tests.fake_anthropic import FakeAnthropic, Reply

TRACKER = Path(__file__).parent / "mcp_servers" / "tracker.py"


async def listed(service: Service) -> dict[str, dict[str, Any]]:
    async with service.http.get("/api/tools", headers=service.headers()) as response:
        assert response.status == 200
        return {tool["name"]: tool for tool in (await response.json())["tools"]}


async def test_the_built_in_the_modules_and_an_mcp_servers_tools_with_their_sources(
    service: Service, fake: FakeAnthropic, tmp_path: Path
) -> None:
    servers = tmp_path / "mcp.json"
    tracker = {"transport": "stdio", "command": sys.executable, "args": [str(TRACKER)]}
    servers.write_text(json.dumps({"servers": {"tracker": tracker}}))
    await service.reconfigure(MCP_SERVERS_FILE=str(servers), WEB_SEARCH="on")

    tools = await listed(service)

    assert tools["search_conversations"]["source"] == "builtin"
    assert tools["calculate"]["source"] == "builtin"
    assert tools["get_weather"]["source"] == "module"
    assert tools["get_weather"]["input_schema"]["required"] == ["location"]
    assert tools["tracker__whoami"]["source"] == "mcp:tracker"
    assert tools["tracker__create_task"]["input_schema"]["properties"]["title"]["type"] == "string"
    assert tools["web_search"]["source"] == "anthropic"
    assert tools["web_search"]["input_schema"]["required"] == ["query"]
    assert all(tool["description"] for tool in tools.values())

    # Exactly what the model is offered, by name.
    fake.script(Reply.text(["Hi."]))
    ws = await service.ws()
    await ws.turn("Hello")
    await ws.close()
    offered = {tool["name"] for tool in fake.requests[-1].body["tools"]}
    assert offered == set(tools)


async def test_the_allowlist_is_what_is_listed(service: Service) -> None:
    await service.reconfigure(CHAT_TOOLS_ALLOW="calculate")
    assert list(await listed(service)) == ["calculate"]


async def test_the_tools_need_a_token(service: Service) -> None:
    async with service.http.get("/api/tools") as response:
        assert response.status == 401
