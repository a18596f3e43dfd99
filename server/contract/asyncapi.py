"""The AsyncAPI 3.0 document of the WebSocket `/ws` and the SSE turn streams."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from server import __version__
from server.contract.components import Components
from server.contract.frames import CLIENT_FRAMES, SERVER_FRAMES, TURN_EVENTS

WS_CLOSE_CODES = (
    "Close codes: 4401 `unauthorized` (bad or missing token), 4408 no `auth` frame in time, "
    "1009 a frame over 4 MiB."
)


def frame_type(model: type[BaseModel]) -> str:
    """The `type` a frame model carries: its message's name in the document."""
    (value,) = get_args(model.model_fields["type"].annotation)
    return str(value)


def build_asyncapi(*, exact: bool = False) -> dict[str, Any]:
    """`exact`: server frames with exactly their fields (what the tests hold the server to);
    published, they allow fields added later. `servers` name localhost:8080 until
    `servers_at` names the host the document is served from."""
    # Client frames are requests (validated), server frames replies (serialised).
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((m, "validation") for m in CLIENT_FRAMES),
        *((m, "serialization") for m in SERVER_FRAMES),
    ]
    components = Components(models, exact=exact)
    messages = {
        frame_type(model): _message(model, components.ref(model, mode)) for model, mode in models
    }
    client = [frame_type(m) for m in CLIENT_FRAMES]
    server = [frame_type(m) for m in SERVER_FRAMES]
    events = [frame_type(m) for m in TURN_EVENTS]
    sse_params = {"turn_id": {"description": "The `turn_id` the client chose"}}
    channels = {
        "websocket": _channel("/ws", client + server, "websocket", WS_CLOSE_CODES),
        "turnStream": _channel(
            "/api/turns",
            events,
            "http",
            "`POST /api/turns` (a `turn.start` body without `type`, Bearer token): the turn's "
            "events as SSE, `event:` = `type`, `id:` = `seq`, `: ping` comments meanwhile.",
        ),
        "turnReattach": _channel(
            "/api/turns/{turn_id}/events",
            events,
            "http",
            "`GET`, with `Last-Event-ID` (or `?after_seq=`): the events after that `seq`, "
            "as `turn.resume` over WS.",
        )
        | {"parameters": sse_params},
    }
    operations = {
        f"receive{_camel(name)}": _operation("receive", "websocket", name) for name in client
    }
    operations |= {f"send{_camel(name)}": _operation("send", "websocket", name) for name in server}
    for channel in ("turnStream", "turnReattach"):
        operations[f"{channel}Events"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{n}"} for n in events],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Chat service realtime API",
            "version": __version__,
            "description": (
                "Frames of the WebSocket `/ws` and events of the SSE turn streams, from the "
                "server's point of view (it receives client frames and sends the rest). "
                "The full contract is docs/protocol.md."
            ),
        },
        "servers": servers_at("localhost:8080", secure=False),
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": components.schemas},
    }


def servers_at(host: str, *, secure: bool) -> dict[str, Any]:
    """The document's servers: the WebSocket and HTTP endpoints at `host` (`name:port`)."""
    return {
        "websocket": {"host": host, "protocol": "wss" if secure else "ws"},
        "http": {"host": host, "protocol": "https" if secure else "http"},
    }


def _message(model: type[BaseModel], payload: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": frame_type(model),
        "contentType": "application/json",
        "payload": payload,
    }
    if model.__doc__ and not model.__doc__.startswith(model.__name__):
        message["summary"] = model.__doc__.strip()
    return message


def _channel(address: str, names: list[str], server: str, description: str) -> dict[str, Any]:
    return {
        "address": address,
        "description": description,
        "servers": [{"$ref": f"#/servers/{server}"}],
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
    }


def _operation(action: str, channel: str, name: str) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"}],
    }


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("."))
