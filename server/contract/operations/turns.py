"""Turns over HTTP: started and re-attached over SSE, listed, looked at, cancelled."""

from __future__ import annotations

from server.contract.operations.operation import TURN_ID, Operation, query
from server.contract.shapes.turns import CancelAccepted, RunningTurns, TurnStatus
from server.schemas import TurnStart

TURNS = (
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
            query("after_seq", {"type": "integer", "minimum": 0}, "Instead of Last-Event-ID"),
        ),
    ),
)
