"""A small MCP server: each user's notes, kept in memory. Run `python examples/notes_server.py`.

Written with the official SDK's `MCPServer` (1.x called it `FastMCP`): a typed
async function is a tool, its docstring the description the model reads, its
type hints the input schema. It speaks MCP over stdin/stdout, so the chat
service starts it as a child process (see `examples/mcp-servers.toml`).

The service shares one session among all its users and says who is asking in
every call's `_meta` (`chat/tenant_id`, `chat/user_id`); this server keeps
each user's notes apart by it. A server reached by others than the service
must not trust `_meta` (anyone can send it); behind the service it is the
caller the service authenticated.
"""

from __future__ import annotations

from collections import defaultdict

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("notes")
# (tenant_id, user_id) -> that user's notes, in the order added.
NOTES: defaultdict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)


def _owner(ctx: Context) -> tuple[str, str]:
    meta = dict(ctx.request_context.meta or {})
    return str(meta.get("chat/tenant_id", "")), str(meta.get("chat/user_id", "anonymous"))


@server.tool()
async def add_note(title: str, text: str, ctx: Context) -> str:
    """Save a note for the user, under a short title."""
    NOTES[_owner(ctx)].append({"title": title, "text": text})
    return f"Saved note {title!r}."


@server.tool()
async def list_notes(ctx: Context) -> str:
    """The titles of the user's notes, oldest first."""
    titles = [note["title"] for note in NOTES[_owner(ctx)]]
    return "\n".join(titles) if titles else "No notes yet."


@server.tool()
async def find_notes(query: str, ctx: Context) -> str:
    """The user's notes whose title or text contains `query` (any case), in full."""
    needle = query.lower()
    found = [
        f"{note['title']}: {note['text']}"
        for note in NOTES[_owner(ctx)]
        if needle in note["title"].lower() or needle in note["text"].lower()
    ]
    return "\n".join(found) if found else f"No notes mention {query!r}."


if __name__ == "__main__":
    server.run()  # stdio; `server.run("streamable-http", port=8765)` serves HTTP instead
