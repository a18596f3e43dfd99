"""One tool call, run to a result the model can read: never an exception.

Whatever happens (an unknown tool, input that fails validation, a tool that
raises or runs out of time) becomes an `is_error` result for the model; only
a cancellation of the turn propagates. Output is capped before it reaches
the model or the store.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal

from server.model.base import ToolCall
from server.tools.registry import ToolContext, ToolInputError, ToolRegistry

log = logging.getLogger(__name__)

ToolStatus = Literal["ok", "error", "timeout", "cancelled"]


@dataclass(frozen=True, slots=True)
class ToolResult:
    call: ToolCall
    status: ToolStatus
    output: str

    def block(self) -> dict[str, Any]:
        """The `tool_result` block as stored: the API's fields plus our `status`."""
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": self.call.id,
            "content": self.output,
            "status": self.status,
        }
        if self.status != "ok":
            block["is_error"] = True
        return block


def cancelled(call: ToolCall) -> ToolResult:
    return ToolResult(call, "cancelled", "The user stopped the answer before this tool finished.")


def not_run(call: ToolCall, reason: str) -> ToolResult:
    return ToolResult(call, "error", reason)


async def run_tool(
    registry: ToolRegistry,
    call: ToolCall,
    context: ToolContext,
    *,
    seconds: float,
    max_chars: int,
) -> ToolResult:
    tool = registry.get(call.name)
    if tool is None:
        return not_run(call, f"There is no tool named {call.name!r}.")
    if call.input_error is not None:
        return not_run(call, f"The input for {call.name} was not a JSON object.")
    try:
        async with asyncio.timeout(seconds):
            output = await tool.call(call.input, context)
    except TimeoutError:
        return ToolResult(call, "timeout", f"The tool {call.name} timed out after {seconds:g} s.")
    except ToolInputError as error:
        return ToolResult(call, "error", str(error))
    except Exception as error:  # a tool's failure is the model's to handle, not the turn's
        log.warning("tool %s failed for turn %s: %r", call.name, context.turn_id, error)
        return ToolResult(call, "error", f"The tool {call.name} failed: {error}")
    return ToolResult(call, "ok", cap(output, max_chars))


def cap(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}\n[output cut: {len(text) - max_chars} more characters]"
