"""What every outgoing shape shares: exact fields, and fields left out rather than null.

These models describe; the server builds the same shapes as plain dicts
(cheaper on the per-token path) and the tests check the two agree.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Shape(BaseModel):
    """An outgoing object: exactly these fields, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable(description: str) -> Any:
    """A field that is left out when it does not apply, and never null."""
    return Field(default=None, description=description, json_schema_extra=_without_default)
