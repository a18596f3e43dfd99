"""The OpenAPI 3.1 document of the REST API, built from the operation tables and the models."""

from __future__ import annotations

from typing import Any

from server import __version__
from server.contract.components import Components
from server.contract.operations import OPERATIONS
from server.contract.operations.operation import Operation
from server.contract.shapes.errors import Problem

SSE_NOTE = (
    "A `text/event-stream` of turn events: `event:` the event's `type`, `id:` its `seq`, "
    "`data:` the same JSON as the WebSocket frame (AsyncAPI document, `/api/asyncapi.json`)."
)
PROBLEM = "#/components/responses/Problem"


def build_openapi(*, exact: bool = False) -> dict[str, Any]:
    """`exact`: replies with exactly their fields (what the tests hold the server to);
    published, they allow fields added later."""
    components = Components(
        [(op.body, "validation") for op in OPERATIONS if op.body]
        + [(op.reply, op.reply_mode) for op in OPERATIONS if op.reply]
        + [(Problem, "serialization")],
        exact=exact,
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
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
