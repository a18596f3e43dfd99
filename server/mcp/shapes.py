"""What the hub hands out, free of the `mcp` SDK's types so its callers need not import it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class McpResult:
    """A tool call's outcome as the model will read it: text, and whether it failed."""

    text: str
    is_error: bool
    timed_out: bool = False  # no answer within the call's time-out (an error too)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool as its server listed it (name unprefixed)."""

    name: str
    description: str
    input_schema: dict[str, Any]


def describe(error: BaseException) -> str:
    """One line for an operator or the model: the innermost causes of an exception group."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in error.exceptions)
    if isinstance(error, TimeoutError):
        return "no answer in time"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
