"""The domain's errors: each has a stable `code` that clients branch on.

Domain code raises these; `problems.py` turns them into problem+json over HTTP
and `error`/`turn.error` frames over WebSocket and SSE. Nothing else builds an
error body.
"""

from __future__ import annotations

from typing import Any, ClassVar

# What an HTTP error that is not a domain error (a wrong method, an unknown path)
# is called in a problem's `code`; any other status is called `http_<status>`.
HTTP_ERROR_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class DomainError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    retryable: ClassVar[bool] = False
    default_detail: ClassVar[str] = ""

    def __init__(self, detail: str = "", **extra: Any) -> None:
        detail = detail or self.default_detail
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def describe(self) -> dict[str, Any]:
        """The error as a turn's outcome stores it and `turn.error` carries it."""
        described = {"code": self.code, "message": self.detail, "retryable": self.retryable}
        return described | self.extra


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401
    title = "Unauthorized"


class OriginNotAllowed(DomainError):
    """A browser request from a page of another origin (cross-site WebSocket, sign-in)."""

    code = "origin_not_allowed"
    status = 403
    title = "Origin not allowed"


class HostNotAllowed(DomainError):
    """Dev sign-in reached under a name that is not loopback (DNS rebinding, a proxy)."""

    code = "host_not_allowed"
    status = 403
    title = "Host not allowed"


class HeaderTooLarge(DomainError):
    code = "header_too_large"
    status = 431
    title = "Request header fields too large"


class NotFound(DomainError):
    """Also what another user's resource looks like: no one learns it exists."""

    code = "not_found"
    status = 404
    title = "Not found"


class ValidationFailed(DomainError):
    code = "validation_error"
    status = 422
    title = "Invalid request"

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        if errors:
            self.extra["errors"] = errors


class SyncExpired(DomainError):
    """A sync cursor older than the deletions the service remembers: start over."""

    code = "sync_expired"
    status = 410
    title = "Sync cursor expired"


class MalformedJson(DomainError):
    code = "malformed_json"
    status = 400
    title = "Malformed JSON"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    status = 413
    title = "Payload too large"


class BadRequest(DomainError):
    """A request its parser refuses (a malformed multipart body): not ours to interpret."""

    code = "bad_request"
    status = 400
    title = "Bad request"


class UnsupportedFileType(DomainError):
    """An upload whose bytes are none of the kinds taken (PNG, JPEG, GIF, WebP, PDF)."""

    code = "unsupported_file_type"
    status = 415
    title = "Unsupported file type"


class InvalidFile(DomainError):
    """An upload of a kind taken that cannot be used: corrupt, encrypted, too big once decoded."""

    code = "invalid_file"
    status = 422
    title = "Invalid file"


class Conflict(DomainError):
    code = "conflict"
    status = 409
    title = "Conflict"


class TurnNotRunning(DomainError):
    code = "turn_not_running"
    status = 409
    title = "Turn not running"


class Limited(DomainError):
    """A limit of ours: 429, with `retry_after` seconds (and `Retry-After`) when there is a wait."""

    status = 429
    retryable = True

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        if retry_after is not None:
            self.extra["retry_after"] = round(retry_after, 3)


class TooManyTurns(Limited):
    code = "too_many_turns"
    title = "Too many turns"


class Flooding(Limited):
    code = "rate_limited"
    title = "Too many requests"


class TooManyConnections(Limited):
    code = "too_many_connections"
    title = "Too many connections"


class BudgetExhausted(Limited):
    """The user's daily output-token budget is spent; `retry_after` runs to midnight UTC."""

    code = "budget_exhausted"
    title = "Daily budget spent"


class InputTooLong(DomainError):
    code = "input_too_long"
    status = 422
    title = "Input too long"


class ModelNotAllowed(DomainError):
    code = "model_not_allowed"
    status = 422
    title = "Model not allowed"


class StorageUnavailable(DomainError):
    code = "storage_unavailable"
    status = 503
    title = "Database unavailable"
    retryable = True


class ShuttingDown(DomainError):
    """The process is draining for a restart: start the turn again on the next connection."""

    code = "shutting_down"
    status = 503
    title = "Service restarting"
    retryable = True
    default_detail = "The service is restarting; reconnect and send it again."


class InternalError(DomainError):
    """A failure of ours (a bug, the database away); logged where it happened."""

    code = "internal"
    status = 500
    title = "Internal server error"
    retryable = True
    default_detail = "Something went wrong on our side; it was logged."


class Interrupted(DomainError):
    """The service stopped (shutdown or crash) before the answer was finished."""

    code = "interrupted"
    status = 503
    title = "Interrupted"
    retryable = True
    default_detail = "The service stopped before the answer was finished."


class UpstreamFailure(DomainError):
    """The model provider failed; `code` says how, `retryable` whether to try again.

    `upstream_status` and `request_id` are for the operator's log line, never
    for clients."""

    status = 502
    title = "Model provider error"
    upstream_status: int | None = None
    request_id: str | None = None


class RateLimited(UpstreamFailure):
    code = "rate_limited"
    status = 429
    title = "Model rate limited"
    retryable = True

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        if retry_after is not None:
            self.extra["retry_after"] = retry_after


class UpstreamUnavailable(UpstreamFailure):
    code = "upstream_unavailable"
    status = 503
    title = "Model unavailable"
    retryable = True


class UpstreamError(UpstreamFailure):
    code = "upstream_error"
    status = 502
    title = "Model error"


class UpstreamTimeout(UpstreamFailure):
    code = "timeout"
    status = 504
    title = "Model timed out"
    retryable = True
