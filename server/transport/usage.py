"""`GET /api/usage`: what the caller's answers used and cost, day by day (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from server.auth import identity_of
from server.codec import json_response
from server.storage.usage import TOTALS
from server.transport.rest import query_int
from server.typedefs import usage_key

routes = web.RouteTableDef()

MAX_DAYS = 90


@routes.get("/api/usage")
async def usage(request: web.Request) -> web.Response:
    """The last `days` UTC days, today included; days without answers are left out."""
    days = query_int(request, "days", default=30, minimum=1, maximum=MAX_DAYS)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    since = today - timedelta(days=days - 1)
    daily = await request.app[usage_key].daily(identity_of(request).scope, since)
    totals = {name: sum(day[name] for day in daily) for name in TOTALS}
    totals["cost_usd"] = round(totals["cost_usd"], 8)
    return json_response({"days": daily, "totals": totals})
