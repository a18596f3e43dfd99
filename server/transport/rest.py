"""REST views: parse the request, call the store, shape the answer. Nothing else."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from aiohttp import web

from server.auth import identity_of
from server.codec import json_response
from server.errors import (
    DomainError,
    NotFound,
    PayloadTooLarge,
    StorageUnavailable,
    ValidationFailed,
)
from server.metrics import CONTENT_TYPE
from server.origins import check_dev_signin
from server.schemas import (
    CreateConversation,
    DevTokenRequest,
    RateMessage,
    UpdateConversation,
    parse_json,
)
from server.storage.conversations import public_conversation
from server.sync.changes import conversation_changed
from server.turns.choices import choose_model, thinking_setting
from server.typedefs import (
    authenticator_key,
    engine_key,
    feed_key,
    limits_key,
    metrics_key,
    settings_key,
    store_key,
    toolbox_key,
)

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_ID_LENGTH = 64
READY_TIMEOUT_SECONDS = 2.0
MAX_QUERY_LENGTH = 200


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response(_health())


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition; aggregate numbers only, meant for the operator's network."""
    body = request.app[metrics_key].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    try:
        # Bounded: without a reachable server the driver would wait out its whole
        # server-selection time-out, far beyond any probe's patience.
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await request.app[store_key].ping()
    except Exception as error:  # any failure to answer means "not ready"
        # The reason names internal addresses: logged, not told to an unauthenticated caller.
        log.warning("readiness check failed: %s", error or type(error).__name__)
        raise StorageUnavailable("The database did not answer a ping") from None
    return json_response(_health())


def _health() -> dict[str, Any]:
    """`pid`: which process answered. With WEB_CONCURRENCY workers on one port, a probe
    or an operator's curl tells them apart and finds each in `ps` and the log."""
    return {"status": "ok", "pid": os.getpid()}


@routes.post("/auth/dev-token")
async def dev_token(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    if not settings.dev_signin:
        raise NotFound("Dev sign-in is off: the service has a JWT setting or a public address")
    check_dev_signin(request, settings)
    body = parse_json(DevTokenRequest, await read_body(request))
    token = request.app[authenticator_key].issue(body.user, body.tenant)
    return json_response(
        {"token": token, "user_id": body.user, "tenant_id": body.tenant or "default"}
    )


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    identity = identity_of(request)
    body: dict[str, object] = {"user_id": identity.user_id, "tenant_id": identity.tenant_id}
    budget, cost_budget = await request.app[limits_key].budgets(identity)
    if budget is not None:  # each only when the operator set it
        body["budget"] = budget
    if cost_budget is not None:
        body["cost_budget"] = cost_budget
    return json_response(body)


@routes.get("/api/models")
async def models(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    return json_response(
        {
            "models": list(settings.models),
            "default": settings.default_model,
            "context_tokens": settings.context_token_budget,
            "token_counts": settings.token_counting,
        }
    )


@routes.post("/api/conversations")
async def create_conversation(request: web.Request) -> web.Response:
    body = parse_json(CreateConversation, await read_body(request))
    settings = request.app[settings_key]
    doc = await request.app[store_key].create_conversation(
        identity_of(request),
        title=body.title or "",
        model=choose_model(settings, body.model),
        system_prompt=body.system_prompt,
        thinking=thinking_setting(settings, body.thinking),
        organised={"project": body.project or None, "pinned": body.pinned, "tags": body.tags},
    )
    request.app[feed_key].publish(conversation_changed(identity_of(request), doc))
    return json_response(public_conversation(doc), status=201)


@routes.get("/api/tools")
async def tools(request: web.Request) -> web.Response:
    """The tools a turn may use here: built-in, operators' modules, MCP servers', the provider's."""
    return json_response({"tools": request.app[toolbox_key].catalogue()})


@routes.get("/api/conversations/{id}")
async def get_conversation(request: web.Request) -> web.Response:
    doc = await request.app[store_key].get_conversation(identity_of(request), path_id(request))
    return json_response(public_conversation(doc))


@routes.patch("/api/conversations/{id}")
async def update_conversation(request: web.Request) -> web.Response:
    body = parse_json(UpdateConversation, await read_body(request))
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if changes.get("model") is not None:
        changes["model"] = choose_model(request.app[settings_key], changes["model"])
    if "thinking" in changes:  # null or `disabled` turns it off
        changes["thinking"] = thinking_setting(request.app[settings_key], body.thinking)
    if "project" in changes:  # empty: out of its project
        changes["project"] = changes["project"] or None
    for field in ("title", "archived", "model", "current_leaf", "pinned", "tags"):
        if field in changes and changes[field] is None:
            raise invalid_body(field, "may be omitted but not null")
    store, identity = request.app[store_key], identity_of(request)
    leaf = changes.pop("current_leaf", None)
    if leaf is not None:  # a branch switch is not activity: the list order stays
        await store.switch_branch(identity, path_id(request), leaf)
    doc = await store.update_conversation(identity, path_id(request), changes)
    if changes or leaf is not None:  # every device of the user is told
        request.app[feed_key].publish(conversation_changed(identity, doc))
    return json_response(public_conversation(doc))


@routes.delete("/api/conversations/{id}")
async def delete_conversation(request: web.Request) -> web.Response:
    await request.app[engine_key].delete_conversation(identity_of(request), path_id(request))
    return web.Response(status=204)


@routes.get("/api/conversations/{id}/messages")
async def list_messages(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", default=50, minimum=1, maximum=200)
    before = query_int(request, "before", default=None, minimum=1, maximum=2**53)
    leaf = request.query.get("leaf") or None
    if leaf is not None and len(leaf) > MAX_ID_LENGTH:
        raise NotFound(f"No message {leaf[:MAX_ID_LENGTH]!r}…")
    items, next_cursor = await request.app[store_key].list_messages(
        identity_of(request), path_id(request), limit=limit, before=before, leaf=leaf
    )
    return json_response({"items": items, "next_cursor": next_cursor})


@routes.put("/api/messages/{id}/feedback")
async def rate_message(request: web.Request) -> web.Response:
    body = parse_json(RateMessage, await read_body(request))
    doc = await request.app[store_key].rate(
        identity_of(request), path_id(request), body.model_dump(exclude_none=True)
    )
    return json_response({"message_id": doc["_id"], "feedback": doc.get("feedback")})


@routes.delete("/api/messages/{id}/feedback")
async def clear_rating(request: web.Request) -> web.Response:
    await request.app[store_key].rate(identity_of(request), path_id(request), None)
    return web.Response(status=204)


@routes.get("/api/search")
async def search(request: web.Request) -> web.Response:
    """Your own messages containing `q`, newest first (what `search_conversations` finds)."""
    query = request.query.get("q", "").strip()
    if not query or len(query) > MAX_QUERY_LENGTH:
        raise invalid_query("q", f"must be 1 to {MAX_QUERY_LENGTH} characters")
    limit = query_int(request, "limit", default=20, minimum=1, maximum=100)
    hits = await request.app[store_key].search_messages(identity_of(request), query, limit=limit)
    return json_response({"items": hits})


# Request helpers shared by the HTTP transports.


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > request.app._client_max_size:
        raise PayloadTooLarge(
            f"The request body is larger than the {request.app._client_max_size} byte limit"
        )
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            f"The request body is larger than the {request.app._client_max_size} byte limit"
        ) from None


def path_id(request: web.Request, name: str = "id") -> str:
    value = request.match_info[name]
    if len(value) > MAX_ID_LENGTH:
        raise NotFound(f"No such id: ids are at most {MAX_ID_LENGTH} characters")
    return value


def query_int(
    request: web.Request, name: str, *, default: int | None, minimum: int, maximum: int
) -> Any:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_query(name, "must be an integer") from None
    if not minimum <= value <= maximum:
        raise invalid_query(name, f"must be between {minimum} and {maximum}")
    return value


def query_bool(request: web.Request, name: str, *, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"true", "1"}:
        return True
    if raw.lower() in {"false", "0"}:
        return False
    raise invalid_query(name, "must be true or false")


def invalid_query(name: str, message: str) -> DomainError:
    return ValidationFailed(
        f"Query parameter {name!r} {message}", [{"field": name, "message": message}]
    )


def invalid_body(name: str, message: str) -> DomainError:
    return ValidationFailed(f"Field {name!r} {message}", [{"field": name, "message": message}])
