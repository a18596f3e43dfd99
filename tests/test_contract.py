"""The documents: served, well-formed, complete, and true to the docs' examples.

That the server sends what they describe is checked everywhere else: the
shared clients pass every body and frame through `tests.contract_check`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import best_match
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from server.contract.asyncapi import build_asyncapi
from server.contract.openapi import build_openapi
from tests.conftest import Service
from tests.contract_check import (
    ASYNCAPI,
    CLIENT_FRAMES,
    OPENAPI,
    OPENAPI_URI,
    SERVER_FRAMES,
    SSE_EVENTS,
    ContractViolation,
    check,
    check_frame,
    check_http,
    operation_of,
)

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "docs" / "protocol.md"
ASYNCAPI_SCHEMA = Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json"
EXAMPLE = re.compile(r"^```(json[^\n]*)\n(.*?)^```", re.M | re.S)


PUBLISHED = {"/api/openapi.json": build_openapi(), "/api/asyncapi.json": build_asyncapi()}


@pytest.mark.parametrize("path", list(PUBLISHED))
async def test_documents_are_served_without_a_token(service: Service, path: str) -> None:
    async with service.http.get(path) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        served = await response.json()
    built = json.loads(json.dumps(PUBLISHED[path], default=str))
    served.pop("servers", None), built.pop("servers", None)  # where it is served from
    assert served == built


async def test_asyncapi_names_the_host_it_is_served_from(service: Service) -> None:
    port = service.http.server.port
    async with service.http.get("/api/asyncapi.json") as response:
        servers = (await response.json())["servers"]
    assert servers == {
        "websocket": {"host": f"127.0.0.1:{port}", "protocol": "ws"},
        "http": {"host": f"127.0.0.1:{port}", "protocol": "http"},
    }
    # Behind a trusted proxy: the host and scheme the proxy was asked for.
    await service.reconfigure(TRUSTED_PROXIES="127.0.0.1")
    headers = {"X-Forwarded-Host": "chat.example.com", "X-Forwarded-Proto": "https"}
    async with service.http.get("/api/asyncapi.json", headers=headers) as response:
        servers = (await response.json())["servers"]
    assert servers["websocket"] == {"host": "chat.example.com", "protocol": "wss"}
    assert servers["http"] == {"host": "chat.example.com", "protocol": "https"}


def _closed(schemas: dict[str, Any]) -> set[str]:
    return {name for name, schema in schemas.items() if schema.get("additionalProperties") is False}


def test_published_replies_and_server_frames_allow_fields_added_later() -> None:
    """A client generated from the published documents keeps working when a reply or a
    frame gains a field; requests stay exact (the server refuses unknown fields), and
    the tests hold the server to the exact shapes."""
    asyncapi = PUBLISHED["/api/asyncapi.json"]["components"]["schemas"]
    openapi = PUBLISHED["/api/openapi.json"]["components"]["schemas"]
    client_frames = {"AuthFrame", "TurnStartFrame", "TurnCancelFrame", "TurnResumeFrame"}
    assert _closed(asyncapi) == client_frames | {"PingFrame", "Thinking"}
    assert _closed(openapi) == {
        # The portable document: exact and versioned, what an export writes an import reads.
        "ConversationDocument",
        "PortableConversation",
        "PortableFeedback",
        "PortableMessage",
        "CreateConversation",
        "DevTokenRequest",
        "RateMessage",
        "Thinking",
        "TurnStart",
        "UpdateConversation",
    }
    exact = ASYNCAPI["components"]["schemas"]
    assert {"ReadyFrame", "TurnDeltaFrame", "ConversationChangedFrame", "Message"} <= _closed(exact)


async def test_a_frame_with_a_field_added_still_matches_the_published_document(
    service: Service,
) -> None:
    ws = await service.ws()
    ready = {**ws.ready, "added_in_a_later_version": True}
    await ws.close()
    published = PUBLISHED["/api/asyncapi.json"]
    registry: Registry[Any] = Registry().with_resource(
        "urn:published", DRAFT202012.create_resource(published)
    )
    schema = {"$ref": "urn:published#/components/schemas/ReadyFrame"}
    assert Draft202012Validator(schema, registry=registry).is_valid(ready)
    with pytest.raises(ContractViolation, match="Additional properties"):
        check_frame(ready)  # the tests' exact documents: the server sends no such field


def test_openapi_is_valid_openapi_3_1() -> None:
    assert OPENAPI["openapi"] == "3.1.0"
    validate_openapi(json.loads(json.dumps(OPENAPI)))


def test_asyncapi_is_valid_asyncapi_3() -> None:
    assert ASYNCAPI["asyncapi"] == "3.0.0"
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    error = best_match(Draft7Validator(schema).iter_errors(json.loads(json.dumps(ASYNCAPI))))
    assert error is None, f"{error.message} at {list(error.absolute_path)}"


@pytest.mark.parametrize("document", [OPENAPI, ASYNCAPI], ids=["openapi", "asyncapi"])
def test_every_ref_resolves(document: dict[str, Any]) -> None:
    for ref in _refs(document):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
            node = node[part]


def test_each_message_is_named_after_its_type() -> None:
    for name, message in ASYNCAPI["components"]["messages"].items():
        schema = ASYNCAPI["components"]["schemas"][message["payload"]["$ref"].rsplit("/", 1)[1]]
        assert schema["properties"]["type"]["const"] == name == message["name"]
    assert set(SSE_EVENTS) < set(SERVER_FRAMES)


async def test_every_http_route_is_documented(service: Service) -> None:
    """All but the page, its static files and the WebSocket (in the AsyncAPI document)."""
    checked: set[tuple[str, str]] = set()
    for route in service.http.server.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method in {"HEAD", "*"} or path in {"/", "/ws", "/static"}:
            continue
        operation = OPENAPI["paths"].get(path, {}).get(route.method.lower())
        assert operation is not None, f"{route.method} {path} is missing from the OpenAPI document"
        checked.add((route.method, path))
    assert {("POST", "/api/turns"), ("GET", "/readyz")} <= checked


def test_the_checker_refuses_what_the_documents_do_not_describe() -> None:
    with pytest.raises(ContractViolation, match="Additional properties"):
        check_frame({"type": "pong", "extra": 1})
    with pytest.raises(ContractViolation, match="undocumented type"):
        check_frame({"type": "turn.progress", "turn_id": "t", "seq": 1})
    with pytest.raises(ContractViolation, match="user_id"):
        check_http("GET", "/api/me", 200, "application/json", b'{"tenant_id": "t"}')
    with pytest.raises(ContractViolation, match="documented as"):
        check_http("GET", "/api/me", 200, "text/plain", b"alice")


def test_turn_ids_are_what_protocol_md_says() -> None:
    turn_id = ASYNCAPI["components"]["schemas"]["TurnStartFrame"]["properties"]["turn_id"]
    assert turn_id == {
        "type": "string",
        "minLength": 1,
        "maxLength": 64,
        "pattern": r"^[A-Za-z0-9_.:-]+$",
    }
    assert "`^[A-Za-z0-9_.:-]+$`" in PROTOCOL.read_text()


# docs/protocol.md: every example is checked, and every frame and reply has one.


def _examples() -> list[tuple[str, Any]]:
    """(the fence's info string, one JSON value) for each ```json block of protocol.md."""
    found = []
    decoder = json.JSONDecoder()
    for info, text in EXAMPLE.findall(PROTOCOL.read_text()):
        position, text = 0, text.strip()
        while position < len(text):
            value, position = decoder.raw_decode(text, position)
            found.append((info.strip(), value))
            while position < len(text) and text[position].isspace():
                position += 1
    return found


EXAMPLES = _examples()


@pytest.mark.parametrize(("info", "value"), EXAMPLES, ids=[i for i, _ in EXAMPLES])
def test_protocol_md_example_matches_its_schema(info: str, value: Any) -> None:
    words = info.split()
    if words == ["json"]:
        sender = "client" if value.get("type") in CLIENT_FRAMES else "server"
        check_frame(value, sent_by=sender)
    elif words[1] == "request":
        method, path = words[2:]
        found = operation_of(method, path)
        assert found is not None, f"{method} {path} is not in the OpenAPI document"
        schema = found[1]["requestBody"]["content"]["application/json"]["schema"]
        check(value, OPENAPI_URI, schema["$ref"], info)
    elif words[1] == "response":
        status, method, path = words[2:]
        content_type = "application/problem+json" if int(status) >= 400 else "application/json"
        check_http(method, path, int(status), content_type, json.dumps(value).encode())
    else:
        pytest.fail(f"unknown example kind {info!r}: use json, json request, json response")


def test_protocol_md_shows_every_frame_and_reply() -> None:
    frames = {v["type"] for info, v in EXAMPLES if info == "json"}
    missing = (set(CLIENT_FRAMES) | set(SERVER_FRAMES)) - frames
    assert not missing, f"protocol.md has no example of {sorted(missing)}"
    replies = {tuple(info.split()[3:]) for info, _ in EXAMPLES if " response " in f" {info} "}
    for path, operations in OPENAPI["paths"].items():
        for method, operation in operations.items():
            content = next(iter(operation["responses"].values())).get("content", {})
            if "application/json" in content and "Document" not in str(content):
                assert (method.upper(), path) in replies, f"no example reply of {method} {path}"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []
