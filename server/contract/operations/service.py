"""The service's own routes, and the caller's: health, sign-in, documents, me, usage, sync."""

from __future__ import annotations

from server.contract.operations.operation import Operation, query
from server.contract.shapes.account import DevToken, Me
from server.contract.shapes.deployment import Document, Health, Models, ToolList
from server.contract.shapes.sync import SyncPage
from server.contract.shapes.usage import UsageReport
from server.schemas import DevTokenRequest

SERVICE = (
    Operation("get", "/healthz", "200 while the process runs", reply=Health, public=True),
    Operation(
        "get",
        "/readyz",
        "200 when the database answers a ping",
        reply=Health,
        public=True,
        errors=(503,),
    ),
    Operation(
        "get",
        "/metrics",
        "Prometheus metrics of this process (for the operator's network only)",
        public=True,
        text="The Prometheus text exposition format 0.0.4: connections, turns, tokens, "
        "latencies, upstream errors, database operations.",
    ),
    Operation(
        "post",
        "/auth/dev-token",
        "Dev sign-in (loopback, no JWT setting): a token for a name",
        reply=DevToken,
        body=DevTokenRequest,
        public=True,
        errors=(400, 403, 404, 413, 422),
    ),
    Operation("get", "/api/openapi.json", "This document", reply=Document, public=True),
    Operation(
        "get",
        "/api/asyncapi.json",
        "The AsyncAPI document of WS and SSE",
        reply=Document,
        public=True,
    ),
    Operation("get", "/api/me", "Who the token says you are", reply=Me),
    Operation("get", "/api/models", "The model allowlist and the default", reply=Models),
    Operation(
        "get",
        "/api/usage",
        "Your answers' tokens and cost, per UTC day and in total",
        reply=UsageReport,
        errors=(422,),
        parameters=(query("days", {"type": "integer", "minimum": 1, "maximum": 90}, "Default 30"),),
    ),
    Operation(
        "get",
        "/api/tools",
        "The tools a turn may use in this deployment, with where each comes from",
        reply=ToolList,
    ),
    Operation(
        "get",
        "/api/sync",
        "What changed since a cursor: conversations (whole), deletions, running turns",
        reply=SyncPage,
        errors=(410, 422, 429),
        parameters=(
            query(
                "since",
                {"type": "string", "maxLength": 6000},
                "The `cursor` of the last sync or push; absent: everything",
            ),
        ),
    ),
)
