"""Turns over plain HTTP: the SSE transport, re-attach, cancel and status.

Errors found before the stream opens are ordinary problem+json responses;
after it opens, they arrive as `turn.error` events from the engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp_sse import sse_response

from server.auth import identity_of
from server.codec import dumps, json_response
from server.errors import DomainError, ValidationFailed
from server.events import TurnEvent
from server.schemas import TurnStart, parse_json
from server.transport.problems import error_frame
from server.transport.rest import path_id, read_body
from server.typedefs import engine_key, limits_key, metrics_key, settings_key

routes = web.RouteTableDef()
# nginx's status for a client gone before its answer: what the access log shows for one.
CLIENT_CLOSED_REQUEST = 499


@routes.post("/api/turns")
async def start_turn(request: web.Request) -> web.StreamResponse:
    body = parse_json(TurnStart, await read_body(request))
    identity = identity_of(request)
    async with request.app[limits_key].connection(identity):  # before the turn: a refusal is a 429
        events = await request.app[engine_key].start(identity, body)
        return await stream(request, body.turn_id, events, started_here=True)


@routes.get("/api/turns/{turn_id}/events")
async def turn_events(request: web.Request) -> web.StreamResponse:
    raw = request.headers.get("Last-Event-ID") or request.query.get("after_seq") or "0"
    try:
        after_seq = int(raw)
        if after_seq < 0:
            raise ValueError(raw)
    except ValueError:
        raise ValidationFailed(
            "Last-Event-ID must be the non-negative seq of the last event received",
            [{"field": "Last-Event-ID", "message": "expected a non-negative integer"}],
        ) from None
    turn_id = path_id(request, "turn_id")
    identity = identity_of(request)
    async with request.app[limits_key].connection(identity):
        events = await request.app[engine_key].resume(identity, turn_id, after_seq)
        return await stream(request, turn_id, events, started_here=False)


@routes.post("/api/turns/{turn_id}/cancel")
async def cancel_turn(request: web.Request) -> web.Response:
    turn_id = path_id(request, "turn_id")
    await request.app[engine_key].cancel(identity_of(request), turn_id)
    return json_response({"turn_id": turn_id, "status": "cancelling"}, status=202)


@routes.get("/api/turns/{turn_id}")
async def turn_status(request: web.Request) -> web.Response:
    turn_id = path_id(request, "turn_id")
    return json_response(await request.app[engine_key].status(identity_of(request), turn_id))


async def stream(
    request: web.Request, turn_id: str, events: AsyncIterator[TurnEvent], *, started_here: bool
) -> web.StreamResponse:
    """Relay events as SSE until the terminal one; a client that leaves only detaches.

    A client may leave at any moment, before the stream opens included: that is an
    ordinary departure (the access log says 499, as nginx does), not a server error.
    """
    gone = True  # until the stream reaches its end
    metrics = request.app[metrics_key]
    try:
        if request.transport is None:
            raise ConnectionResetError  # aiohttp-sse would fail an assertion on it
        async with (
            contextlib.aclosing(events),  # type: ignore[type-var]
            sse_response(
                request,
                ping_interval=request.app[settings_key].sse_ping_seconds,
                allow_all_methods=True,
            ) as response,
        ):
            metrics.sse_streams += 1
            try:
                async for event in events:
                    await response.send(dumps(event.to_wire()), id=str(event.seq), event=event.type)
                gone = False
            except DomainError as error:  # following failed; the turn itself may run on
                await response.send(dumps(error_frame(error, turn_id)), event="error")
                gone = False
            finally:
                metrics.sse_streams -= 1
    except (ConnectionError, TimeoutError):
        # The client left, or stalled past the send time-out. Nobody reads this answer.
        return web.Response(status=CLIENT_CLOSED_REQUEST, reason="Client Closed Request")
    finally:
        if gone and started_here:
            request.app[engine_key].abandon(identity_of(request), turn_id)
    return response
