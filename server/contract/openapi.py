"""The OpenAPI 3.1 document of the REST API, built from the models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from server import __version__
from server.contract.components import Components
from server.contract.files import FileInfo
from server.contract.portable import ConversationDocument
from server.contract.shapes import (
    CancelAccepted,
    Conversation,
    ConversationPage,
    DevToken,
    Document,
    Health,
    LabelList,
    Me,
    MessageFeedback,
    MessagePage,
    Models,
    Problem,
    RunningTurns,
    SearchPage,
    SyncPage,
    ToolList,
    TurnStatus,
)
from server.contract.sharing import ShareCreated, SharedConversation, ShareList
from server.contract.usage import UsageReport
from server.files.kinds import ACCEPTED
from server.schemas import (
    CreateConversation,
    DevTokenRequest,
    RateMessage,
    TurnStart,
    UpdateConversation,
)

ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
TURN_ID = ID | {"name": "turn_id"}
TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
SSE_NOTE = (
    "A `text/event-stream` of turn events: `event:` the event's `type`, `id:` its `seq`, "
    "`data:` the same JSON as the WebSocket frame (AsyncAPI document, `/api/asyncapi.json`)."
)


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema} | {
        "description": description
    }


ARCHIVED = _query("archived", {"type": "boolean", "default": False}, "Archived ones instead")
PROBLEM = "#/components/responses/Problem"
LIMIT = {"type": "integer", "minimum": 1}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    status: int = 200
    reply: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    public: bool = False
    stream: bool = False  # the reply is an SSE stream
    text: str = ""  # the reply is plain text, described so
    media: tuple[tuple[str, str], ...] = ()  # other media types of the reply, described
    page: bool = False  # a page: its errors are pages too (text/html), not problems
    # The reply is a request's shape (the export is what the import reads): exact, versioned.
    reply_mode: JsonSchemaMode = "serialization"
    parameters: tuple[dict[str, Any], ...] = ()
    upload: bool = False  # the body is multipart/form-data with a `file` field
    binary: tuple[str, ...] = ()  # the reply is the bytes of one of these media types


FILE_ID = ID | {"name": "file_id"}
OPERATIONS = (
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
        parameters=(
            _query("days", {"type": "integer", "minimum": 1, "maximum": 90}, "Default 30"),
        ),
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
            _query(
                "since",
                {"type": "string", "maxLength": 6000},
                "The `cursor` of the last sync or push; absent: everything",
            ),
        ),
    ),
    Operation(
        "post",
        "/api/conversations",
        "Create a conversation",
        status=201,
        reply=Conversation,
        body=CreateConversation,
        errors=(400, 413, 422),
    ),
    Operation(
        "get",
        "/api/conversations",
        "Your conversations, pinned first, then most recently active first",
        reply=ConversationPage,
        errors=(422,),
        parameters=(
            _query("limit", LIMIT | {"maximum": 100, "default": 20}, "Page size"),
            _query(
                "cursor",
                {"type": "string", "maxLength": 512},
                "`next_cursor` of a page (with the same filters)",
            ),
            ARCHIVED,
            _query("project", {"type": "string", "maxLength": 100}, "Only this project's"),
            _query("tag", {"type": "string", "maxLength": 40}, "Only those with this tag"),
            _query("pinned", {"type": "boolean"}, "Only the pinned ones, or the unpinned"),
        ),
    ),
    Operation(
        "get",
        "/api/projects",
        "Your projects, with how many conversations each holds",
        reply=LabelList,
        errors=(422,),
        parameters=(ARCHIVED,),
    ),
    Operation(
        "get",
        "/api/tags",
        "Your tags, with how many conversations carry each",
        reply=LabelList,
        errors=(422,),
        parameters=(ARCHIVED,),
    ),
    Operation(
        "get",
        "/api/conversations/{id}",
        "One conversation",
        reply=Conversation,
        errors=(404,),
        parameters=(ID,),
    ),
    Operation(
        "patch",
        "/api/conversations/{id}",
        "Rename, archive, file (project, pin, tags), change model or system prompt, "
        "or switch branches (`current_leaf`)",
        reply=Conversation,
        body=UpdateConversation,
        errors=(400, 404, 413, 422),
        parameters=(ID,),
    ),
    Operation(
        "delete",
        "/api/conversations/{id}",
        "Delete it with its messages (stops its turn)",
        status=204,
        errors=(404,),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/api/conversations/{id}/messages",
        "One branch's messages, the latest page first: the current branch, or `leaf`'s",
        reply=MessagePage,
        errors=(404, 422),
        parameters=(
            ID,
            _query("limit", LIMIT | {"maximum": 200, "default": 50}, "Page size"),
            _query("before", {"type": "integer", "minimum": 1}, "`next_cursor` of a page"),
            _query(
                "leaf",
                {"type": "string", "maxLength": 64},
                "The branch ending at this message instead of `current_leaf`",
            ),
        ),
    ),
    Operation(
        "put",
        "/api/messages/{id}/feedback",
        "Rate one of your answers (an assistant message), with an optional reason",
        reply=MessageFeedback,
        body=RateMessage,
        errors=(400, 404, 413, 422),
        parameters=(ID,),
    ),
    Operation(
        "delete",
        "/api/messages/{id}/feedback",
        "Clear your rating of an answer",
        status=204,
        errors=(404, 422),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/api/search",
        "Your own messages containing a word or phrase (case-insensitive), newest first",
        reply=SearchPage,
        errors=(422,),
        parameters=(
            {"name": "q", "in": "query", "required": True}
            | {"schema": {"type": "string", "minLength": 1, "maxLength": 200}}
            | {"description": "What to find"},
            _query("limit", LIMIT | {"maximum": 100, "default": 20}, "At most this many"),
        ),
    ),
    Operation(
        "post",
        "/api/turns",
        "Run a turn over SSE (the body of `turn.start`, without `type`)",
        body=TurnStart,
        stream=True,
        errors=(400, 404, 409, 413, 422, 429),
    ),
    Operation(
        "get",
        "/api/turns",
        "Your turns running now, in any process",
        reply=RunningTurns,
        errors=(422, 429),
        parameters=(
            {"name": "status", "in": "query", "required": True}
            | {"schema": {"type": "string", "enum": ["running"]}}
            | {"description": "`running`, the only list there is"},
        ),
    ),
    Operation(
        "post",
        "/api/files",
        "Upload an image (PNG, JPEG, GIF, WebP) or a PDF to attach to a message",
        status=201,
        reply=FileInfo,
        upload=True,
        errors=(400, 413, 415, 422),
    ),
    Operation(
        "get",
        "/api/files/{file_id}",
        "The file's bytes (an attachment download, never rendered inline)",
        binary=ACCEPTED,
        errors=(404,),
        parameters=(FILE_ID,),
    ),
    Operation(
        "get",
        "/api/files/{file_id}/meta",
        "What the file is",
        reply=FileInfo,
        errors=(404,),
        parameters=(FILE_ID,),
    ),
    Operation(
        "delete",
        "/api/files/{file_id}",
        "Delete a file (messages that used it then show it as deleted)",
        status=204,
        errors=(404,),
        parameters=(FILE_ID,),
    ),
    Operation(
        "get",
        "/api/turns/{turn_id}",
        "A turn's status",
        reply=TurnStatus,
        errors=(404,),
        parameters=(TURN_ID,),
    ),
    Operation(
        "post",
        "/api/turns/{turn_id}/cancel",
        "Stop a running turn, keeping its partial answer",
        status=202,
        reply=CancelAccepted,
        errors=(404, 409),
        parameters=(TURN_ID,),
    ),
    Operation(
        "get",
        "/api/turns/{turn_id}/events",
        "Re-attach to a turn over SSE",
        stream=True,
        errors=(404, 422, 429),
        parameters=(
            TURN_ID,
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "integer", "minimum": 0},
                "description": "The `seq` of the last event received",
            },
            _query("after_seq", {"type": "integer", "minimum": 0}, "Instead of Last-Event-ID"),
        ),
    ),
)

SHARE_OPERATIONS = (
    Operation(
        "get",
        "/api/conversations/{id}/export",
        "Download it: Markdown of the current branch, or the whole tree as a portable document",
        reply=ConversationDocument,
        reply_mode="validation",
        media=(("text/markdown", "The current branch as a person reads it"),),
        errors=(404, 422),
        parameters=(
            ID,
            _query(
                "format",
                {"type": "string", "enum": ["json", "markdown"], "default": "json"},
                "`json`: the portable document (every branch); `markdown`: the current branch",
            ),
        ),
    ),
    Operation(
        "get",
        "/api/export",
        "All your conversations as JSON Lines, one portable document a line, streamed",
        media=(("application/x-ndjson", "One `chat-service.conversation` document a line"),),
    ),
    Operation(
        "post",
        "/api/conversations/import",
        "Import a portable document as a new conversation of yours (every id new)",
        status=201,
        reply=Conversation,
        body=ConversationDocument,
        errors=(400, 413, 422),
    ),
    Operation(
        "post",
        "/api/conversations/{id}/shares",
        "Share a snapshot of the current branch behind an unguessable link",
        status=201,
        reply=ShareCreated,
        errors=(404,),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/api/conversations/{id}/shares",
        "The conversation's live share links (their ids; the links are shown once)",
        reply=ShareList,
        errors=(404,),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/api/shares/{id}",
        "A shared snapshot, read with the link's token as `id` (no sign-in)",
        reply=SharedConversation,
        public=True,
        errors=(404,),
        parameters=(ID | {"schema": {"type": "string"}},),
    ),
    Operation(
        "delete",
        "/api/shares/{id}",
        "Revoke a share link: from then on it is a 404 everywhere",
        status=204,
        errors=(404,),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/s/{token}",
        "The read-only share page (no sign-in; no script; noindex)",
        public=True,
        errors=(404,),
        page=True,
        media=(("text/html", "The shared conversation, rendered on the server"),),
        parameters=(TOKEN,),
    ),
)


def build_openapi(*, exact: bool = False) -> dict[str, Any]:
    """`exact`: replies with exactly their fields (what the tests hold the server to);
    published, they allow fields added later."""
    components = Components(
        [(op.body, "validation") for op in (*OPERATIONS, *SHARE_OPERATIONS) if op.body]
        + [(op.reply, op.reply_mode) for op in (*OPERATIONS, *SHARE_OPERATIONS) if op.reply]
        + [(Problem, "serialization")],
        exact=exact,
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in (*OPERATIONS, *SHARE_OPERATIONS):
        paths.setdefault(op.path, {})[op.method] = _operation(op, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Chat service REST API",
            "version": __version__,
            "description": (
                "Conversations, messages and turns over HTTP. The full contract, with the "
                "WebSocket, is docs/protocol.md; WS and SSE frames are in /api/asyncapi.json."
            ),
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "responses": {
                "Problem": {
                    "description": "An error, as `application/problem+json`",
                    "content": {"application/problem+json": {"schema": components.ref(Problem)}},
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _operation(op: Operation, components: Components) -> dict[str, Any]:
    responses: dict[str, Any] = {str(op.status): {"description": op.summary}}
    if op.stream:
        responses[str(op.status)]["content"] = {
            "text/event-stream": {"schema": {"type": "string", "description": SSE_NOTE}}
        }
    elif op.text:
        responses[str(op.status)]["content"] = {
            "text/plain": {"schema": {"type": "string", "description": op.text}}
        }
    elif op.binary:
        binary = {"schema": {"type": "string", "format": "binary"}}
        responses[str(op.status)]["content"] = {kind: binary for kind in op.binary}
    elif op.reply is not None:
        responses[str(op.status)]["content"] = {
            "application/json": {"schema": components.ref(op.reply, op.reply_mode)}
        }
    for media, description in op.media:
        content = responses[str(op.status)].setdefault("content", {})
        content[media] = {"schema": {"type": "string", "description": description}}
    # Any authenticated operation may meet the database away (503 storage_unavailable).
    statuses = set(op.errors) | ({500} if op.public else {401, 500, 503})
    for status in sorted(statuses):
        responses[str(status)] = {"$ref": PROBLEM}
    for status in op.errors if op.page else ():
        html = {"text/html": {"schema": {"type": "string"}}}
        responses[str(status)] = {"description": "A page saying what went wrong", "content": html}
    responses["default"] = {"$ref": PROBLEM}
    operation: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "responses": responses,
    }
    if op.parameters:
        operation["parameters"] = list(op.parameters)
    if op.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": components.ref(op.body, "validation")}},
        }
    if op.upload:
        form = {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}},
        }
        operation["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": form}},
        }
    if op.public:
        operation["security"] = []
    return operation


def _operation_id(op: Operation) -> str:
    words = [w.strip("{}") for w in op.path.replace(".", "/").replace("-", "/").split("/") if w]
    return op.method + "".join(w[:1].upper() + w[1:] for w in words)
