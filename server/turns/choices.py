"""What a turn runs with: the model and the extended-thinking setting, checked.

Used by the engine for each turn and by the REST API when a conversation is
created or changed, so both refuse the same requests with the same errors.
"""

from __future__ import annotations

from typing import Any

from server.config import Settings
from server.errors import ModelNotAllowed, ValidationFailed
from server.schemas import Thinking


def choose_model(settings: Settings, requested: str | None, fallback: str | None = None) -> str:
    """The requested model if allowed, else the conversation's, else the default."""
    allowed = settings.models
    if requested is not None:
        if requested not in allowed:
            raise ModelNotAllowed(
                f"Model {requested!r} is not offered; choose one of {list(allowed)}"
            )
        return requested
    return fallback if fallback in allowed else settings.default_model


def thinking_setting(settings: Settings, requested: Thinking | None) -> dict[str, Any] | None:
    """Extended thinking as stored (None: off); its budget must leave room for the answer."""
    if requested is None or requested.type == "disabled":
        return None
    budget = requested.budget_tokens
    limit = settings.max_output_tokens
    if budget is None or budget >= limit:
        message = f"must be below MAX_OUTPUT_TOKENS ({limit})"
        raise ValidationFailed(
            f"thinking.budget_tokens {message}",
            [{"field": "thinking.budget_tokens", "message": message}],
        )
    return {"type": "enabled", "budget_tokens": budget}
