"""Tools an operator might add (`CHAT_TOOLS=tests.tools_for_tests`), for the tool loop's tests.

The service under test runs in the test's process, so a test can see what a
tool went through (`CANCELLED`).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import Field

from server.tools.registry import ToolContext, tool

CANCELLED: list[str] = []  # the `label`s of slow_tool calls whose task was cancelled


@tool
async def get_weather(location: Annotated[str, Field(min_length=1)]) -> str:
    """The weather at a place (always fine here)."""
    return f"Sunny in {location}, 21 °C"


@tool
async def slow_tool(seconds: Annotated[float, Field(ge=0, le=60)], label: str = "") -> str:
    """Waits, then answers: for time-outs, cancels and crashes mid-tool."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        CANCELLED.append(label)
        raise
    return f"slept {seconds:g} s"


@tool
async def failing_tool(reason: str) -> str:
    """Always raises."""
    raise RuntimeError(reason)


@tool(name="whoami", description="Who is asking")
async def who_is_asking(context: ToolContext) -> dict[str, str]:
    return {"tenant": context.identity.tenant_id, "user": context.identity.user_id}


@tool
async def big_output(size: Annotated[int, Field(ge=0, le=1_000_000)]) -> str:
    """A long answer, to show the cap."""
    return "x" * size
