"""The documents as a checker: every body and frame the tests see must match them.

The shared test clients (`conftest.Service`, `sse_client.SseReader`) pass what
they receive through here, so a server that sends something the OpenAPI or
AsyncAPI document does not describe fails the test that saw it, with the
schema's complaint and the offending JSON in the message.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import aiohttp
from aiohttp.connector import Connection
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from server.contract.asyncapi import build_asyncapi
from server.contract.openapi import build_openapi

# Exact: the server must send exactly the documented fields, though the published
# documents allow more (for clients of later versions).
OPENAPI = build_openapi(exact=True)
ASYNCAPI = build_asyncapi(exact=True)
OPENAPI_URI, ASYNCAPI_URI = "urn:chat:openapi", "urn:chat:asyncapi"
REGISTRY: Registry[Any] = Registry().with_resources(
    [
        (OPENAPI_URI, DRAFT202012.create_resource(OPENAPI)),
        (ASYNCAPI_URI, DRAFT202012.create_resource(ASYNCAPI)),
    ]
)
JSON_TYPES = frozenset({"application/json", "application/problem+json"})


class ContractViolation(AssertionError):
    """What the server sent is not what its documents say."""


@functools.cache
def validator(uri: str, pointer: str) -> Draft202012Validator:
    """A validator for the schema at `pointer` ("#/components/...") of a document."""
    return Draft202012Validator(
        {"$ref": f"{uri}{pointer}"}, registry=REGISTRY, format_checker=FormatChecker()
    )


def check(value: Any, uri: str, pointer: str, what: str) -> None:
    error = best_match(validator(uri, pointer).iter_errors(value))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        raise ContractViolation(
            f"{what} does not match {pointer}: {error.message} at {where}\n"
            f"  sent: {json.dumps(value, default=str)[:2000]}"
        )


# AsyncAPI: frames by `type`


def _messages(channel: str, action: str) -> dict[str, str]:
    """`type` → payload schema pointer, for the messages `action`ed on `channel`."""
    found: dict[str, str] = {}
    for operation in ASYNCAPI["operations"].values():
        if operation["channel"]["$ref"] != f"#/channels/{channel}":
            continue
        if operation["action"] != action:
            continue
        for message_ref in operation["messages"]:
            name = message_ref["$ref"].rsplit("/", 1)[1]
            found[name] = ASYNCAPI["components"]["messages"][name]["payload"]["$ref"]
    return found


SERVER_FRAMES = _messages("websocket", "send")
CLIENT_FRAMES = _messages("websocket", "receive")
SSE_EVENTS = _messages("turnStream", "send")


def check_frame(frame: Any, *, sent_by: str = "server") -> None:
    """A WS frame, by its `type`, against the AsyncAPI message the server sends (or receives)."""
    known = SERVER_FRAMES if sent_by == "server" else CLIENT_FRAMES
    kind = frame.get("type") if isinstance(frame, dict) else None
    if kind not in known:
        raise ContractViolation(f"{sent_by} frame of undocumented type {kind!r}: {frame}")
    check(frame, ASYNCAPI_URI, known[kind], f"WS {sent_by} frame {kind!r}")


def check_sse(event: str | None, event_id: str | None, data: Any) -> None:
    """An SSE event: `event:` is the data's `type`, `id:` its `seq`, the data a turn event."""
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in SSE_EVENTS or event != kind:
        raise ContractViolation(f"SSE event {event!r} with undocumented data {data}")
    if event_id != str(data.get("seq")):
        raise ContractViolation(f"SSE id {event_id!r} is not the seq of {data}")
    check(data, ASYNCAPI_URI, SSE_EVENTS[kind], f"SSE event {kind!r}")


# OpenAPI: responses by path template, method and status


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")


PATHS = [(_template(path), path) for path in OPENAPI["paths"]]


def operation_of(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    for pattern, template in PATHS:  # the next template may have it: `.../import`, `.../{id}`
        if pattern.match(path):
            operation = OPENAPI["paths"][template].get(method.lower())
            if operation is not None:
                return template, operation
    return None


def check_http(method: str, path: str, status: int, content_type: str, body: bytes) -> None:
    """A response against its operation's documented response for that status."""
    what = f"{method} {path} → {status} {content_type}"
    found = operation_of(method, path)
    if found is None:
        if status >= 400 and content_type == "application/problem+json":
            check(json.loads(body), OPENAPI_URI, "#/components/schemas/Problem", what)
        elif content_type in JSON_TYPES:
            raise ContractViolation(f"{what}: a JSON reply of an undocumented operation")
        return
    template, operation = found
    responses = operation["responses"]
    response = responses.get(str(status)) or responses.get("default")
    if response is None or (status < 400 and str(status) not in responses):
        raise ContractViolation(f"{what}: status not documented for {method} {template}")
    if "$ref" in response:
        response = OPENAPI["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    content = response.get("content", {})
    if not content:
        if body:
            raise ContractViolation(f"{what}: documented without a body, sent {body[:200]!r}")
        return
    if content_type not in content:
        raise ContractViolation(f"{what}: documented as {sorted(content)}")
    if content_type in JSON_TYPES:
        pointer = content[content_type]["schema"]["$ref"]
        check(json.loads(body), OPENAPI_URI, pointer, what)


# The clients the tests use: aiohttp's, with these checks on what comes in


class CheckedResponse(aiohttp.ClientResponse):
    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        response = await super().start(connection)
        if self.content_type != "text/event-stream" and self.method != "HEAD":
            body = await self.read()
            check_http(self.method, self.url.path, self.status, self.content_type, body)
        return response


class CheckedWebSocket(aiohttp.ClientWebSocketResponse):
    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        message = await super().receive(timeout)
        if message.type == aiohttp.WSMsgType.TEXT:
            check_frame(json.loads(message.data))
        return message


CHECKED = {"response_class": CheckedResponse, "ws_response_class": CheckedWebSocket}
