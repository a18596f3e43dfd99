"""One MCP server: connect, list its tools, call them, notice a drop, reconnect, close.

A supervisor task owns the transport and the `ClientSession` (the SDK's anyio
task groups must be entered and left by one task). Callers use the session from
their own tasks, so cancelling a caller cancels its request (the SDK sends
`notifications/cancelled`), and the identity set for the call is in the
context the SDK captures when it writes the request (the HTTP headers below).

A drop is noticed by a periodic ping and right after any failed call; the
supervisor then reconnects with exponential backoff. A call that arrives
while the server is away wakes the supervisor from its backoff and waits for
the connection, within the call's own time-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import shutil
import sys
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any, cast

import httpx2
import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from server.identity import Identity
from server.mcp.config import HttpServer, StdioServer
from server.mcp.shapes import McpResult, ToolSpec, describe

log = logging.getLogger(__name__)

GUARD = Path(__file__).with_name("guard.py")
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0

# The caller of the tool call in flight, read by the HTTP auth flow below. The SDK
# runs the POST in a copy of the context current when the request was written.
_caller: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "mcp_caller", default=None
)


def identity_meta(identity: Identity) -> types.RequestParamsMeta:
    """The request `_meta` that tells a tenant-aware server who is asking."""
    meta = {"chat/tenant_id": identity.tenant_id, "chat/user_id": identity.user_id}
    return cast(types.RequestParamsMeta, meta)  # an open TypedDict: any extra keys


class _IdentityHeaders(httpx2.Auth):
    """Adds a server's templated headers, filled for the caller of the current tool call."""

    def __init__(self, config: HttpServer) -> None:
        self._config = config

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response]:
        caller = _caller.get(None)
        if caller is not None:
            request.headers.update(self._config.identity_headers(caller))
        yield request


class Connection:
    """A server by name; `tools` is its last listing, kept while it is away."""

    def __init__(
        self,
        name: str,
        config: StdioServer | HttpServer,
        *,
        connect_timeout: float,
        health_interval: float,
    ) -> None:
        self.name = name
        self.config = config
        self.tools: dict[str, ToolSpec] = {}
        self.failure: str | None = None
        self._connect_timeout = connect_timeout
        self._health_interval = health_interval
        self._session: ClientSession | None = None
        self._connected = asyncio.Event()
        self._attempted = asyncio.Event()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"mcp:{self.name}")

    async def first_attempt(self) -> None:
        """Returns once the first connection attempt has succeeded or failed."""
        await self._attempted.wait()

    @property
    def connected(self) -> bool:
        return self._session is not None

    async def call(self, tool: str, arguments: dict[str, Any], identity: Identity) -> McpResult:
        """Call `tool`; raises if the server cannot be reached (the caller bounds the wait)."""
        while self._session is None:
            self._wake.set()  # skip the backoff: someone needs the server now
            await self._connected.wait()
        session = self._session
        token = _caller.set(identity)
        try:
            result = await session.call_tool(tool, arguments, meta=identity_meta(identity))
        except BaseException:
            self._wake.set()  # check the connection at once, not at the next ping
            raise
        finally:
            _caller.reset(token)
        return McpResult(text=result_text(result), is_error=bool(result.is_error))

    async def close(self) -> None:
        """End the session; for stdio the SDK closes stdin, then signals the process group."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self._connect_timeout + 5)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _supervise(self) -> None:
        delay = BACKOFF_FIRST_SECONDS
        while not self._closing:
            try:
                async with self._open() as session:
                    self._session = session
                    self._connected.set()
                    if self.failure is not None or not self._attempted.is_set():
                        log.info("MCP server %s: connected, %d tools", self.name, len(self.tools))
                    self.failure = None
                    self._attempted.set()
                    delay = BACKOFF_FIRST_SECONDS
                    await self._watch(session)
            except Exception as error:
                cause = describe(error)
                # One line per new cause, not one per retry; the hub reports the first.
                if self._attempted.is_set() and cause != self.failure:
                    log.warning("MCP server %s: %s; retrying with backoff", self.name, cause)
                self.failure = cause
            finally:
                self._session = None
                self._connected.clear()
            self._attempted.set()
            if not self._closing:
                await self._sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)

    @contextlib.asynccontextmanager
    async def _open(self) -> AsyncIterator[ClientSession]:
        async with contextlib.AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._transport(stack))
            session = await stack.enter_async_context(ClientSession(read, write))
            async with asyncio.timeout(self._connect_timeout):
                await session.initialize()
                self.tools = await self._list_tools(session)
            yield session

    def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        config = self.config
        if isinstance(config, StdioServer):
            if shutil.which(config.command, path=config.env.get("PATH")) is None:
                raise FileNotFoundError(f"no such command: {config.command}")
            params = StdioServerParameters(
                command=sys.executable,
                args=["-I", str(GUARD), str(os.getpid()), config.command, *config.args],
                env=config.env,
                cwd=config.cwd,
            )
            return stdio_client(params)
        client = create_mcp_http_client(
            headers=config.static_headers, auth=_IdentityHeaders(config)
        )
        stack.push_async_callback(client.aclose)
        return streamable_http_client(config.url, http_client=client)

    async def _list_tools(self, session: ClientSession) -> dict[str, ToolSpec]:
        tools: dict[str, ToolSpec] = {}
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            for tool in page.tools:
                tools[tool.name] = ToolSpec(tool.name, tool.description or "", tool.input_schema)
            cursor = page.next_cursor
            if not cursor:
                return tools

    async def _watch(self, session: ClientSession) -> None:
        """Returns when closing, or when a ping fails (after a failed call: at once)."""
        while not self._closing:
            await self._sleep(self._health_interval)
            if self._closing:
                return
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await session.send_ping()
            except Exception as error:
                log.warning("MCP server %s: lost (%s); reconnecting", self.name, describe(error))
                self.failure = "lost"
                return

    async def _sleep(self, seconds: float) -> None:
        """Sleep, or less if woken (a call waiting, a failed call, close)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()


def result_text(result: types.CallToolResult) -> str:
    """The result's content as text for the model; non-text blocks are named, not inlined."""
    parts: list[str] = []
    for block in result.content:
        match block:
            case types.TextContent():
                parts.append(block.text)
            case types.EmbeddedResource() if isinstance(block.resource, types.TextResourceContents):
                parts.append(block.resource.text)
            case types.ResourceLink():
                parts.append(f"[resource: {block.uri}]")
            case _:
                parts.append(f"[{block.type}: {getattr(block, 'mime_type', '') or 'binary'}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content))
    return "\n".join(parts)
