"""Build the aiohttp application: middlewares, routes, and the resources' lives.

Resources come and go through `cleanup_ctx`, so each is closed only if it
was opened, in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server import diagnostics
from server.auth import Authenticator, auth_middleware
from server.cluster.cluster import open_cluster
from server.config import Settings
from server.contract.documents import Documents
from server.files.store import FileStore
from server.files.sweep import sweep_files
from server.forwarded import forwarded_middleware
from server.limits import Limits
from server.limits.shared import SharedCounters
from server.mcp.config import load_servers
from server.mcp.hub import McpHub
from server.metrics import Metrics
from server.model import build_model
from server.storage.changes import ChangeStore
from server.storage.client import open_database
from server.storage.conversations import Store
from server.storage.deadline import StorageDeadline
from server.storage.migrations import index_all, link_all, migrate
from server.storage.turns import TurnStore
from server.storage.usage import UsageStore
from server.sync.feed import ChangeFeed
from server.tools.loader import load_registry
from server.tools.provider import provider_tools
from server.tools.toolbox import ToolBox
from server.transport import exports, page, rest, shares, shelves, specs, sse, sync, usage, ws
from server.transport import files as file_routes
from server.transport.deadlines import deadline_middleware
from server.transport.headers import add_security_headers
from server.transport.problems import problem_middleware
from server.turns.engine import TurnEngine
from server.typedefs import (
    authenticator_key,
    changes_key,
    deadline_key,
    documents_key,
    engine_key,
    feed_key,
    files_key,
    limits_key,
    mcp_hub_key,
    metrics_key,
    settings_key,
    store_key,
    toolbox_key,
    tools_key,
    usage_key,
    ws_connections_key,
)

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CLIENT_MAX_SIZE = 256 * 1024


def build_app(settings: Settings) -> web.Application:
    authenticator = Authenticator(settings)
    app = web.Application(
        client_max_size=CLIENT_MAX_SIZE,
        middlewares=[
            forwarded_middleware(settings.trusted_proxies),
            problem_middleware,
            auth_middleware(
                lambda r: r.app[authenticator_key],
                public=specs.PUBLIC_PATHS,
                public_reads=shares.PUBLIC_READS,
            ),
            deadline_middleware,
        ],
    )
    app[settings_key] = settings
    app[authenticator_key] = authenticator
    app[ws_connections_key] = set()
    app[documents_key] = Documents.build()
    # Loaded before anything starts: an operator's module that fails stops start-up in one line.
    app[tools_key] = load_registry(settings)
    metrics = app[metrics_key] = Metrics()
    metrics.gauge(
        "chat_ws_connections_open",
        "Open, authenticated WebSocket connections.",
        lambda: len(app[ws_connections_key]),
    )
    # Read now, so a bad servers file stops start-up before anything has started.
    servers = load_servers(settings.mcp_servers_file) if settings.mcp_servers_file else {}
    app[mcp_hub_key] = McpHub(
        servers,
        connect_timeout=settings.mcp_connect_timeout_seconds,
        call_timeout=settings.mcp_call_timeout_seconds,
        max_result_chars=settings.mcp_result_max_chars,
        health_interval=settings.mcp_health_check_seconds,
    )
    # MCP servers first: up before the engine runs a turn, closed after its last turn ends.
    app.cleanup_ctx.append(diagnostics.on_sigusr1)
    app.cleanup_ctx.append(_mcp_servers)
    app.cleanup_ctx.append(_services)
    app.on_shutdown.append(_drain)
    app.on_response_prepare.append(add_security_headers)
    app.add_routes(exports.routes)  # before rest's: POST .../import is not a conversation id
    app.add_routes(rest.routes)
    app.add_routes(shelves.routes)
    app.add_routes(shares.routes)
    app.add_routes(file_routes.routes)
    app.add_routes(sse.routes)
    app.add_routes(sync.routes)
    app.add_routes(usage.routes)
    app.add_routes(page.routes)
    app.add_routes(specs.routes)
    app.router.add_get("/ws", ws.websocket)
    app.router.add_static("/static/", ROOT / "static", append_version=False)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(ROOT / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    return app


async def _mcp_servers(app: web.Application) -> AsyncIterator[None]:
    """The MCP servers: connected with a bounded wait (a failing one skipped), closed at exit."""
    hub = app[mcp_hub_key]
    try:
        await hub.start()
        yield
    finally:
        await hub.close()


async def _services(app: web.Application) -> AsyncIterator[None]:
    """Database, Redis, model and engine, up for the life of the app; turns recovered first."""
    settings = app[settings_key]
    metrics = app[metrics_key]
    async with (
        open_database(settings, [metrics.command_listener()]) as (db, ping),
        open_cluster(settings) as cluster,
    ):
        await migrate(db)
        store = Store(db)
        turns = TurnStore(db, owner=uuid.uuid4().hex, lease_seconds=settings.turn_lease_seconds)
        model = build_model(settings)
        # With Redis the limits hold across processes; without, each counts its own.
        counters = (
            SharedCounters(cluster.link, lease_seconds=settings.turn_lease_seconds)
            if cluster is not None
            else None
        )
        spending = app[usage_key] = UsageStore(db)
        limits = app[limits_key] = Limits(settings, spending.spent_since, counters)
        tools = app[toolbox_key] = ToolBox(
            app[tools_key], app[mcp_hub_key], provider_tools(settings)
        )
        # Changes pushed to every socket of a user: here, and with Redis in every process.
        feed = app[feed_key] = ChangeFeed(cluster.changes if cluster is not None else None)
        app[changes_key] = ChangeStore(db)
        files = app[files_key] = FileStore(db)
        await files.ensure_indexes()
        # Every request's database work bounded; waited for while the database is busy.
        deadline = app[deadline_key] = StorageDeadline(settings.storage_timeout_seconds, ping)
        metrics.gauge(
            "chat_storage_deadlines_extended",
            "Requests' database deadlines moved on since start because the database, busy, "
            "still answered its ping.",
            lambda: deadline.extended,
        )
        engine = TurnEngine(
            settings, store, turns, model, metrics, tools, limits, cluster, feed, files, deadline
        )
        if cluster is not None:
            metrics.gauge(
                "chat_redis_available",
                "1 while Redis (REDIS_URL) answers, 0 while turns fall back to MongoDB.",
                lambda: int(cluster.available),
            )
        metrics.gauge(
            "chat_turns_running", "Turns running in this process.", lambda: engine.running_turns
        )
        await engine.recover(everything=settings.mongodb_uri is None)
        app[store_key] = store
        app[engine_key] = engine
        sweeper = asyncio.create_task(_sweep(engine, settings.turn_lease_seconds))
        file_sweeper = asyncio.create_task(sweep_files(files, settings.unused_file_hours))
        # Conversations of before the tree; any one a request touches is linked at once.
        linking = asyncio.create_task(link_all(db), name="link-stored-conversations")
        # Messages of before search terms; until indexed, search does not find them.
        indexing = asyncio.create_task(index_all(db), name="index-stored-messages")
        if counters is not None:
            counters.start()
        try:
            yield
        finally:
            for task in (sweeper, file_sweeper, linking, indexing):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await engine.close()
            await model.close()
            if counters is not None:
                await counters.close()


async def _drain(app: web.Application) -> None:
    """SIGTERM: the listener is closed; finish or stop the turns, then close the sockets.

    Runs before aiohttp waits for (and then cancels) the request handlers, so
    each WebSocket gets its turns' final events and a 1012 close instead of a
    dropped connection."""
    if engine_key not in app:  # start-up did not get that far
        return
    await app[engine_key].drain(app[settings_key].shutdown_drain_seconds)
    open_now = app[ws_connections_key]
    await asyncio.gather(*(connection.close_for_restart() for connection in set(open_now)))


async def _sweep(engine: TurnEngine, lease_seconds: float) -> None:
    """Free the turns of processes that died without a trace (many processes, one cluster)."""
    while True:
        await asyncio.sleep(lease_seconds)
        try:
            await engine.recover(everything=False)
        except Exception as error:  # the database may be briefly away; try again next round
            log.warning("turn recovery sweep failed: %s", error)
