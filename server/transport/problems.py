"""Errors at the edges: one middleware for HTTP, one function for frames.

Every failure a client can see passes through here, so each has the same shape
and a stable `code` whatever the transport.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from server.errors import HTTP_ERROR_CODES, DomainError, InternalError, StorageUnavailable
from server.storage.client import StorageError

log = logging.getLogger(__name__)


def problem_response(status: int, title: str, detail: str, code: str, **extra: Any) -> web.Response:
    body = {
        "type": f"about:blank#{code}" if code else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, round(extra["retry_after"])))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="chat"'
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/problem+json",
        headers=headers,
    )


def problem_from_error(error: DomainError) -> web.Response:
    return problem_response(error.status, error.title, error.detail, error.code, **error.extra)


def error_payload(error: DomainError) -> dict[str, Any]:
    """The body of a WS `error` frame (or, with `retryable`, of a `turn.error`)."""
    return {"code": error.code, "message": error.detail, **error.extra}


def domain_error(error: Exception, where: str) -> DomainError:
    """Any failure as the domain error a client is told: the one translation of both edges.

    A database error is the database being away (unreachable, failing over, its
    process restarting): `storage_unavailable`, retryable, never `internal`."""
    if isinstance(error, DomainError):
        return error
    if isinstance(error, StorageError):
        log.warning("database unavailable during %s: %s", where, error)
        return StorageUnavailable("The database did not answer; try again shortly.")
    log.error("unhandled error during %s", where, exc_info=error)
    return InternalError()


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as error:
        return problem_from_error(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = HTTP_ERROR_CODES.get(exc.status, f"http_{exc.status}")
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 413:
            detail = (
                f"The request body is larger than the {request.app._client_max_size} byte limit"
            )
        return problem_response(exc.status, exc.reason, detail or exc.reason, code)
    except Exception as error:
        return problem_from_error(domain_error(error, f"{request.method} {request.path}"))


def error_frame(error: DomainError, turn_id: str | None = None) -> dict[str, Any]:
    """A WS `error` frame: a request that could not be acted on; the socket stays open."""
    frame: dict[str, Any] = {"type": "error", **error_payload(error)}
    if turn_id is not None:
        frame["turn_id"] = turn_id
    return frame
