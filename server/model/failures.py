"""The provider's error types and statuses, as the domain's upstream failures."""

from __future__ import annotations

from server.errors import RateLimited, UpstreamError, UpstreamFailure, UpstreamUnavailable

RETRY_LATER = {"overloaded_error", "api_error"}


def failure_for(kind: str | None, status: int | None, retry_after: float | None) -> UpstreamFailure:
    """One mapping for an error response and an `error` event inside a stream."""
    if status == 429 or kind == "rate_limit_error":
        return RateLimited("The model is rate limited. Try again shortly.", retry_after)
    if (status is not None and status >= 500) or kind in RETRY_LATER:
        return UpstreamUnavailable("The model is overloaded or unavailable. Try again shortly.")
    if status is None:
        return UpstreamError("The model stopped the answer with an error.")
    return UpstreamError(f"The model rejected the request (status {status}).")
