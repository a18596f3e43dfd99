"""Errors as clients see them: problem+json over HTTP, and the stored or framed `ErrorInfo`."""

from __future__ import annotations

from pydantic import ConfigDict, Field, RootModel
from pydantic.json_schema import SkipJsonSchema

from server.contract.shapes.base import Shape, omittable
from server.errors import HTTP_ERROR_CODES, DomainError


def _codes(cls: type[DomainError]) -> set[str]:
    found = {cls.code}
    for sub in cls.__subclasses__():
        found |= _codes(sub)
    return found


# `error` is the abstract base's placeholder; no raised error carries it.
ERROR_CODES = sorted(_codes(DomainError) - {"error"})


class ErrorCode(RootModel[str]):
    """A stable error code that clients branch on (see docs/protocol.md)."""

    model_config = ConfigDict(json_schema_extra={"enum": [*ERROR_CODES]})


class ProblemCode(RootModel[str]):
    """A domain error's code, a generic HTTP error's, or `http_<status>` for any other."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"enum": [*sorted(set(ERROR_CODES) | set(HTTP_ERROR_CODES.values()))]},
                {"pattern": "^http_[1-5][0-9]{2}$"},
            ]
        }
    )


class FieldError(Shape):
    field: str = Field(description="The field (dotted path), query parameter or header at fault")
    message: str


class ErrorInfo(Shape):
    """Why an answer failed or stopped: stored on the message, carried by `turn.error`."""

    code: ErrorCode
    message: str
    retryable: bool
    retry_after: float | SkipJsonSchema[None] = omittable(
        "Seconds to wait, when the model provider said so (`rate_limited`)"
    )


class Problem(Shape):
    """`application/problem+json` (RFC 9457), with a stable `code`."""

    type: str = Field(description="`about:blank#<code>`")
    title: str
    status: int
    detail: str
    code: ProblemCode
    errors: list[FieldError] | SkipJsonSchema[None] = omittable("The fields at fault (422)")
    retry_after: float | SkipJsonSchema[None] = omittable(
        "Seconds to wait; also sent as the `Retry-After` header"
    )
