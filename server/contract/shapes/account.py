"""Who a token says you are, and what your daily budgets leave you (`/api/me`, dev sign-in)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from server.contract.shapes.base import Shape, omittable


class Budget(Shape):
    """The daily output-token budget (`OUTPUT_TOKENS_PER_DAY`), counted in UTC days."""

    output_tokens_per_day: int = Field(ge=1)
    output_tokens_used: int = Field(ge=0, description="By answers begun today that have ended")
    output_tokens_remaining: int = Field(ge=0, description="0: new turns get `budget_exhausted`")
    resets_at: datetime = Field(description="The next midnight UTC")


class CostBudget(Shape):
    """The daily cost budget (`COST_PER_USER_PER_DAY_USD`), counted in UTC days."""

    cost_usd_per_day: float = Field(gt=0)
    cost_usd_used: float = Field(ge=0, description="By answers begun today that have ended")
    cost_usd_remaining: float = Field(ge=0, description="0: new turns get `budget_exhausted`")
    resets_at: datetime = Field(description="The next midnight UTC")


class Me(Shape):
    user_id: str
    tenant_id: str
    budget: Budget | SkipJsonSchema[None] = omittable(
        "Only when the operator set a daily budget (`OUTPUT_TOKENS_PER_DAY`)"
    )
    cost_budget: CostBudget | SkipJsonSchema[None] = omittable(
        "Only when the operator set a daily cost budget (`COST_PER_USER_PER_DAY_USD`)"
    )


class DevToken(Shape):
    token: str = Field(description="A JWT to send as `Authorization: Bearer <token>`")
    user_id: str
    tenant_id: str
