"""Tokens and what they cost: a turn's, a conversation's, a caller's by day (`/api/usage`)."""

from __future__ import annotations

from pydantic import Field

from server.contract.shapes.base import Shape


class Usage(Shape):
    """Tokens by how they are billed, summed over a turn's rounds, and what they cost.

    `input_tokens` is only the prompt after the last cache breakpoint: the whole
    prompt is the sum of the three input fields."""

    input_tokens: int = Field(ge=0, description="Prompt tokens billed at the input price")
    output_tokens: int = Field(ge=0)
    cache_creation_input_tokens: int = Field(
        ge=0, description="Prompt tokens written to the prompt cache (1.25 x input; 2 x for 1h)"
    )
    cache_read_input_tokens: int = Field(
        ge=0, description="Prompt tokens read from the prompt cache (0.1 x input)"
    )
    web_search_requests: int = Field(ge=0, description="Server-side web searches, billed apart")
    cost_usd: float = Field(ge=0, description="At the deployment's prices (`PRICES_FILE`)")


class DailyUsage(Usage):
    date: str = Field(description="The UTC day, YYYY-MM-DD", pattern=r"^\d{4}-\d{2}-\d{2}$")


class UsageReport(Shape):
    days: list[DailyUsage] = Field(description="Days with answers, oldest first; others omitted")
    totals: Usage
