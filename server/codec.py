"""JSON in and out, through orjson: datetimes as ISO 8601 and no float surprises."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def json_response(value: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")
