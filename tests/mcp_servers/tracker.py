"""A small tenant-aware MCP server for the tests, built with the SDK's MCPServer.

`python tests/mcp_servers/tracker.py stdio` or `... http PORT`. Its tools let a
test see what reached the server: the caller's identity (request `_meta` and
HTTP headers), a failure, a crash mid-call, a call that outlives its time-out (and notes when it
was cancelled), its own pid (to kill it), and an oversized answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("tracker")


@server.tool()
async def create_task(title: str) -> str:
    """Create a task with this title."""
    return f"created {title!r}"


@server.tool()
async def whoami(ctx: Context) -> str:
    """Say who the caller is, as this server sees it."""
    meta = ctx.request_context.meta or {}
    headers = ctx.headers or {}
    return json.dumps(
        {
            "meta": {k: v for k, v in dict(meta).items() if k.startswith("chat/")},
            "headers": {k: v for k, v in headers.items() if k.lower().startswith("x-")},
        }
    )


@server.tool()
async def fail(reason: str = "boom") -> str:
    """Always fails."""
    raise ValueError(reason)


@server.tool()
async def slow(seconds: float, marker: str = "") -> str:
    """Sleep, writing `marker` if the request is cancelled first."""
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        if marker:
            Path(marker).write_text("cancelled")  # noqa: ASYNC240 (no await in a cancelled scope)
        raise
    return "woke up"


@server.tool()
async def crash() -> str:
    """Exit at once, in the middle of the call, as a server that crashes does."""
    os._exit(3)


@server.tool()
async def pid() -> str:
    """This server's process id."""
    return str(os.getpid())


@server.tool()
async def big(chars: int) -> str:
    """An answer of `chars` characters."""
    return "x" * chars


if __name__ == "__main__":
    if os.environ.get("TRACKER_HELPER"):
        # A process of its own, like the real server a launcher (npx, uvx) starts.
        subprocess.Popen(["sleep", "300"])
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
