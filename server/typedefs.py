"""Typed application keys, in one module so that nothing imports in a circle."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from server.auth import Authenticator
    from server.config import Settings
    from server.contract.documents import Documents
    from server.files.store import FileStore
    from server.identity import Identity
    from server.limits import Limits
    from server.mcp.hub import McpHub
    from server.metrics import Metrics
    from server.storage.changes import ChangeStore
    from server.storage.conversations import Store
    from server.storage.deadline import StorageDeadline
    from server.storage.usage import UsageStore
    from server.sync.feed import ChangeFeed
    from server.tools.registry import ToolRegistry
    from server.tools.toolbox import ToolBox
    from server.transport.ws import Connection
    from server.turns.engine import TurnEngine

settings_key: web.AppKey[Settings] = web.AppKey("settings")
store_key: web.AppKey[Store] = web.AppKey("store")
authenticator_key: web.AppKey[Authenticator] = web.AppKey("authenticator")
engine_key: web.AppKey[TurnEngine] = web.AppKey("engine")
limits_key: web.AppKey[Limits] = web.AppKey("limits")
# The live WebSocket connections: shutdown closes them, metrics and tests count them.
ws_connections_key: web.AppKey[set[Connection]] = web.AppKey("ws_connections")
documents_key: web.AppKey[Documents] = web.AppKey("documents")
metrics_key: web.AppKey[Metrics] = web.AppKey("metrics")
tools_key: web.AppKey[ToolRegistry] = web.AppKey("tools")
# Every tool a turn may use (the registry's, the MCP servers', the provider's): `GET /api/tools`.
toolbox_key: web.AppKey[ToolBox] = web.AppKey("toolbox")
# The MCP servers' tools; the tool loop offers `definitions()` and routes calls to `call()`.
mcp_hub_key: web.AppKey[McpHub] = web.AppKey("mcp_hub")
# The change feed: pushes to every socket of a user (here, and through Redis elsewhere).
feed_key: web.AppKey[ChangeFeed] = web.AppKey("feed")
changes_key: web.AppKey[ChangeStore] = web.AppKey("changes")
usage_key: web.AppKey[UsageStore] = web.AppKey("usage")
files_key: web.AppKey[FileStore] = web.AppKey("files")
# Every request's database work within STORAGE_TIMEOUT_SECONDS, longer while it is only busy.
deadline_key: web.AppKey[StorageDeadline] = web.AppKey("deadline")
identity_key: web.RequestKey[Identity] = web.RequestKey("identity")
client_address_key: web.RequestKey[str] = web.RequestKey("client_address")
