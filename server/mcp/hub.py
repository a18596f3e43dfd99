"""All configured MCP servers behind two calls: `definitions()` and `call()`.

The tool loop offers `definitions()` to the model next to its own tools and sends
a `tool_use` whose name it does not own to `call()`. Names are namespaced
`server__tool`, so two servers' tools never collide, and the allowlist is applied
both when listing and when calling (the model cannot call what it was not shown).

`call()` never raises for a tool's failure: the server's `isError`, an
exception, a lost connection and a time-out all come back as an `is_error`
result the model can read. Only cancellation propagates, and it cancels the
MCP request.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from server.identity import Identity
from server.mcp.config import SEPARATOR, HttpServer, StdioServer
from server.mcp.shapes import McpResult, describe

if TYPE_CHECKING:
    from server.mcp.connection import Connection

log = logging.getLogger(__name__)

# Anthropic's rule for a tool name; a namespaced name that breaks it is not offered.
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class McpHub:
    def __init__(
        self,
        servers: Mapping[str, StdioServer | HttpServer],
        *,
        connect_timeout: float,
        call_timeout: float,
        max_result_chars: int,
        health_interval: float,
    ) -> None:
        self._servers = servers
        self._connect_timeout = connect_timeout
        self._call_timeout = call_timeout
        self._max_result_chars = max_result_chars
        self._health_interval = health_interval
        self._connections: dict[str, Connection] = {}

    async def start(self) -> None:
        """Connect to every server at once; wait at most the connect time-out (plus a margin).

        A server not up by then is logged with one line and keeps being retried in
        the background; start-up goes on without it.
        """
        if not self._servers:
            return
        from server.mcp.connection import Connection  # the SDK, only when a server is configured

        for name, config in self._servers.items():
            connection = Connection(
                name,
                config,
                connect_timeout=self._connect_timeout,
                health_interval=self._health_interval,
            )
            self._connections[name] = connection
            connection.start()
        waits = [asyncio.ensure_future(c.first_attempt()) for c in self._connections.values()]
        await asyncio.wait(waits, timeout=self._connect_timeout + 1.0)
        for task in waits:
            task.cancel()
        for name, connection in self._connections.items():
            if not connection.connected:
                cause = connection.failure or f"not connected within {self._connect_timeout:g} s"
                log.warning("MCP server %s skipped at start-up: %s", name, cause)
                continue
            unknown = set(connection.config.tools or ()) - set(connection.tools)
            if unknown:
                log.warning("MCP server %s has no tools named %s", name, ", ".join(sorted(unknown)))

    def definitions(self) -> list[dict[str, Any]]:
        """Anthropic tool definitions of every allowed tool of the servers seen so far."""
        return [definition for _, definition in self._offered()]

    def catalogue(self) -> list[dict[str, Any]]:
        """The definitions as `GET /api/tools` lists them, each with its source `mcp:<server>`."""
        return [{**definition, "source": f"mcp:{server}"} for server, definition in self._offered()]

    def _offered(self) -> list[tuple[str, dict[str, Any]]]:
        offered = []
        for server, connection in self._connections.items():
            for tool in connection.tools.values():
                name = f"{server}{SEPARATOR}{tool.name}"
                if self._allowed(connection, tool.name) and TOOL_NAME.match(name):
                    definition = {
                        "name": name,
                        "description": tool.description,
                        "input_schema": tool.input_schema,
                    }
                    offered.append((server, definition))
        return offered

    def owns(self, name: str) -> bool:
        """Whether `name` is one of the hub's namespaced tools (for the tool loop's dispatch)."""
        server, _, tool = name.partition(SEPARATOR)
        connection = self._connections.get(server)
        return connection is not None and bool(tool) and self._allowed(connection, tool)

    async def call(self, name: str, input: Mapping[str, Any], identity: Identity) -> McpResult:
        """Run the tool `server__tool` for `identity`; failures are `is_error` results."""
        if not self.owns(name):
            return McpResult(f"unknown tool {name!r}", is_error=True)
        server, _, tool = name.partition(SEPARATOR)
        connection = self._connections[server]
        timeout = connection.config.call_timeout_seconds or self._call_timeout
        try:
            async with asyncio.timeout(timeout):
                result = await connection.call(tool, dict(input), identity)
        except TimeoutError:
            log.warning("MCP tool %s timed out after %g s", name, timeout)
            return McpResult(f"{name} timed out after {timeout:g} s", is_error=True, timed_out=True)
        except Exception as error:
            log.warning("MCP tool %s failed: %s", name, describe(error))
            return McpResult(f"{name} failed: {describe(error)}", is_error=True)
        return self._capped(result)

    async def close(self) -> None:
        """Close every connection (concurrently: each may wait for its process to exit)."""
        await asyncio.gather(*(c.close() for c in self._connections.values()))

    @staticmethod
    def _allowed(connection: Connection, tool: str) -> bool:
        allowlist = connection.config.tools
        return allowlist is None or tool in allowlist

    def _capped(self, result: McpResult) -> McpResult:
        text = result.text
        if len(text) <= self._max_result_chars:
            return result
        cut = len(text) - self._max_result_chars
        kept = text[: self._max_result_chars]
        return McpResult(f"{kept}\n[truncated: {cut} more characters]", result.is_error)
