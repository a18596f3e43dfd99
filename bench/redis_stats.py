"""What Redis did for the service during a stretch of load: its pid (for CPU) and commands.

Read with `INFO` from the `REDIS_URL` the bench passes on to its service; None
without one, so every figure built on it is simply absent.
"""

from __future__ import annotations

import os
from typing import Any

from redis.asyncio import Redis


async def redis_stats() -> dict[str, int] | None:
    """Redis's pid and the commands it has processed so far."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    async with Redis.from_url(url) as redis:
        info: dict[str, Any] = await redis.info()
    return {"pid": int(info["process_id"]), "commands": int(info["total_commands_processed"])}


def commands_between(before: dict[str, int] | None, after: dict[str, int] | None) -> int | None:
    """Commands Redis processed in between, less the one `INFO` of ours that ended it."""
    if before is None or after is None:
        return None
    return after["commands"] - before["commands"] - 1
