"""The registry, the built-in tools, `CHAT_TOOLS` loading, and the search's scoping.

`search_conversations` is driven the way the model drives it (a scripted
`tool_use` against the fake), and as `GET /api/search`: another user's or
another tenant's words are never found.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Field

from server.config import Settings, load_settings
from server.identity import Identity
from server.startup_errors import ConfigError
from server.tools.builtin import calculate
from server.tools.loader import load_registry
from server.tools.registry import ToolContext, ToolInputError, tool
from tests.conftest import Service
from tests.fake_anthropic import FakeAnthropic, Reply, ToolUse
from tests.live_server import run_cli, server_env

ALICE = Identity("default", "alice")


async def no_search(query: str, limit: int) -> list[dict[str, Any]]:
    return []


CONTEXT = ToolContext(ALICE, "turn-1", no_search)


@tool
async def book(
    context: ToolContext,
    title: Annotated[str, Field(min_length=1, description="The book's title")],
    copies: Annotated[int, Field(ge=1, le=3)] = 1,
) -> dict[str, Any]:
    """Reserve a book."""
    return {"who": context.identity.user_id, "title": title, "copies": copies}


def test_a_tool_schema_comes_from_its_type_hints() -> None:
    spec = book.spec()
    assert spec["name"] == "book"
    assert spec["description"] == "Reserve a book."
    schema = spec["input_schema"]
    assert schema["type"] == "object"
    assert schema["required"] == ["title"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["title"] == {
        "type": "string",
        "minLength": 1,
        "description": "The book's title",
    }
    assert schema["properties"]["copies"]["maximum"] == 3
    assert "context" not in schema["properties"]  # the caller's identity is not input


async def test_a_tool_gets_validated_input_and_its_callers_identity() -> None:
    assert await book.call({"title": "Dune"}, CONTEXT) == (
        '{"who":"alice","title":"Dune","copies":1}'
    )
    with pytest.raises(ToolInputError, match="copies: Input should be less than or equal to 3"):
        await book.call({"title": "Dune", "copies": 9}, CONTEXT)
    with pytest.raises(ToolInputError, match="title: Input should be a valid string"):
        await book.call({"title": 42}, CONTEXT)


@pytest.mark.parametrize(
    ("expression", "answer"),
    [
        ("2+2", "2+2 = 4"),
        ("(1 + 2) * 3 ** 2", "(1 + 2) * 3 ** 2 = 27"),
        ("7 / 2", "7 / 2 = 3.5"),
        ("-7 // 2", "-7 // 2 = -4"),
    ],
)
async def test_calculate_evaluates_arithmetic(expression: str, answer: str) -> None:
    assert await calculate.call({"expression": expression}, CONTEXT) == answer


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('true')", "x + 1", "2 ** 100000", "1 / 0", "(1).real", "True + 1"],
)
async def test_calculate_refuses_anything_but_arithmetic(expression: str) -> None:
    assert (await calculate.call({"expression": expression}, CONTEXT)).startswith("Cannot evaluate")


def test_chat_tools_adds_a_module_and_the_allowlist_picks(tmp_path: Path) -> None:
    settings = load_settings({"CHAT_TOOLS": "tests.tools_for_tests", "DATA_DIR": str(tmp_path)})
    names = load_registry(settings).names
    assert {"search_conversations", "calculate", "get_weather", "whoami"} <= set(names)
    allowed = replace(settings, tools_allow=("calculate", "get_weather"))
    assert load_registry(allowed).names == ("calculate", "get_weather")
    assert load_registry(replace(settings, tools_allow=())).names == ()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHAT_TOOLS": "not a module"}, "CHAT_TOOLS='not a module': not a module path"),
        ({"CHAT_TOOLS_ALLOW": "calc ulate"}, "CHAT_TOOLS_ALLOW='calc ulate': expected tool names"),
        ({"MAX_TOOL_ROUNDS": "-1"}, "MAX_TOOL_ROUNDS=-1: must be between 0 and 100"),
        ({"TOOL_TIMEOUT_SECONDS": "soon"}, "TOOL_TIMEOUT_SECONDS='soon': not a number"),
        ({"TOOL_OUTPUT_MAX_CHARS": "10"}, "TOOL_OUTPUT_MAX_CHARS=10: must be between 100"),
    ],
)
def test_bad_tool_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHAT_TOOLS": "tests.no_such_module"}, "cannot import tests.no_such_module"),
        ({"CHAT_TOOLS": "tests.conftest"}, "module tests.conftest defines no tool"),
        ({"CHAT_TOOLS_ALLOW": "calculate,nope"}, "CHAT_TOOLS_ALLOW: no tool named nope"),
    ],
)
def test_tools_that_cannot_be_loaded_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_registry(load_settings(env))


async def test_a_tool_module_that_fails_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = server_env(DATA_DIR=str(tmp_path), PORT="0", CHAT_TOOLS="tests.no_such_module")
    code, out, err = await run_cli(env=env)
    assert code == 2, err
    assert out == ""
    assert err.strip().splitlines() == [
        "configuration error: CHAT_TOOLS: cannot import tests.no_such_module: "
        "No module named 'tests.no_such_module'"
    ]


def test_settings_default_to_every_tool() -> None:
    settings = Settings()
    assert (settings.tool_modules, settings.tools_allow) == ((), None)
    assert load_registry(settings).names == ("search_conversations", "calculate")


async def search_by_tool(
    service: Service, fake: FakeAnthropic, query: str, *, user: str, tenant: str | None = None
) -> str:
    fake.script(
        Reply.blocks(
            ToolUse("toolu_s", "search_conversations", {"query": query}), stop_reason="tool_use"
        ),
        Reply.text(["Found."]),
    )
    ws = await service.ws(user, tenant)
    frames = await ws.turn(f"Did I mention {query}?")
    await ws.close()
    assert frames[-1]["type"] == "turn.done", frames[-1]
    result: str = frames[-1]["message"]["blocks"][1]["content"]
    return result


async def test_search_finds_only_the_callers_own_words(
    service: Service, fake: FakeAnthropic
) -> None:
    ws = await service.ws("alice", "acme")
    await ws.turn("My secret PLUM cake recipe")
    await ws.close()

    mine = await search_by_tool(service, fake, "plum", user="alice", tenant="acme")
    assert '"snippet":"My secret PLUM cake recipe"' in mine
    assert "Did I mention" not in mine  # the question asking is not a hit of itself
    for user, tenant in (("bob", "acme"), ("alice", "other")):
        theirs = await search_by_tool(service, fake, "plum", user=user, tenant=tenant)
        assert theirs == "No message of yours contains 'plum'."


async def test_search_over_rest_is_scoped_too(service: Service, fake: FakeAnthropic) -> None:
    ws = await service.ws("alice", "acme")
    started = await ws.turn("Quince jelly, step (1)")
    await ws.close()

    async with service.http.get(
        "/api/search", params={"q": "jelly, step (1"}, headers=service.headers("alice", "acme")
    ) as response:
        assert response.status == 200
        items = (await response.json())["items"]
    assert [(i["role"], i["seq"]) for i in items] == [("assistant", 2), ("user", 1)]
    assert items[0]["conversation_id"] == started[0]["conversation_id"]
    for user, tenant in (("bob", "acme"), ("alice", None)):
        async with service.http.get(
            "/api/search", params={"q": "jelly"}, headers=service.headers(user, tenant)
        ) as response:
            assert (await response.json())["items"] == []
    async with service.http.get(
        "/api/search", params={"q": ""}, headers=service.headers()
    ) as response:
        assert response.status == 422
