"""Every tool a turn may offer and call: the registry's own, and those of MCP servers.

The tool loop sees one box. Registry tools are typed Python functions run
here; external tools (the MCP hub's, namespaced `server__tool`) are run by
their owner, which already turns every failure into an `is_error` result and
keeps its own time-out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from server.identity import Identity
from server.model.base import ToolCall
from server.tools import provider
from server.tools.registry import ToolContext, ToolRegistry
from server.tools.runner import ToolResult, ToolStatus, cap, run_tool


class ExternalResult(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def is_error(self) -> bool: ...

    @property
    def timed_out(self) -> bool: ...


class ExternalTools(Protocol):
    """Tools run elsewhere (the MCP hub); the list changes as servers come and go."""

    def definitions(self) -> list[dict[str, Any]]: ...

    def catalogue(self) -> list[dict[str, Any]]: ...

    def owns(self, name: str) -> bool: ...

    async def call(
        self, name: str, input: Mapping[str, Any], identity: Identity
    ) -> ExternalResult: ...


class ToolBox:
    def __init__(
        self,
        registry: ToolRegistry,
        external: ExternalTools | None = None,
        provider: Sequence[dict[str, Any]] = (),
    ) -> None:
        self._registry = registry
        self._external = external
        # Server tools (web search, web fetch): offered only; the provider runs them.
        self._provider = list(provider)

    def specs(self) -> list[dict[str, Any]]:
        """The Messages API's `tools`: ours, the external ones seen so far, the server tools."""
        external = self._external.definitions() if self._external is not None else []
        return [*self._registry.specs(), *external, *self._provider]

    def catalogue(self) -> list[dict[str, Any]]:
        """What `GET /api/tools` lists: the same tools as `specs()`, each with its source."""
        external = self._external.catalogue() if self._external is not None else []
        return [*self._registry.catalogue(), *external, *provider.catalogue(self._provider)]

    async def run(
        self, call: ToolCall, context: ToolContext, *, seconds: float, max_chars: int
    ) -> ToolResult:
        external = self._external
        if external is None or not external.owns(call.name):
            return await run_tool(
                self._registry, call, context, seconds=seconds, max_chars=max_chars
            )
        if call.input_error is not None:
            return ToolResult(call, "error", f"The input for {call.name} was not a JSON object.")
        try:
            # The owner keeps its own, usually shorter, time-out; this one bounds it anyway.
            async with asyncio.timeout(seconds):
                result = await external.call(call.name, call.input, context.identity)
        except TimeoutError:
            return ToolResult(
                call, "timeout", f"The tool {call.name} timed out after {seconds:g} s."
            )
        status: ToolStatus = "timeout" if result.timed_out else "error" if result.is_error else "ok"
        return ToolResult(call, status, cap(result.text, max_chars))
