"""What a caller's answers used and cost, day by day (`GET /api/usage`)."""

from __future__ import annotations

from pydantic import Field

from server.contract.shapes import Shape, Usage


class DailyUsage(Usage):
    date: str = Field(description="The UTC day, YYYY-MM-DD", pattern=r"^\d{4}-\d{2}-\d{2}$")


class UsageReport(Shape):
    days: list[DailyUsage] = Field(description="Days with answers, oldest first; others omitted")
    totals: Usage
