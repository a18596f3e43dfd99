"""What Redis did for the service during a stretch of load: its pid (for CPU) and commands.

Read with `INFO` from the `REDIS_URL` the bench passes on to its service; None
without one, so every figure built on it is simply absent.
"""

from __future__ import annotations

import os
from typing import Any

from redis.asyncio import Redis


async def redis_stats() -> dict[str, int] | None:
    """Redis's pid, the commands it has processed so far (a script's own commands
    included), and its script calls (each one round trip of a batch or a limit check)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    async with Redis.from_url(url) as redis:
        info: dict[str, Any] = await redis.info()
        stats: dict[str, Any] = await redis.info("commandstats")
    scripts = sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))
    return {
        "pid": int(info["process_id"]),
        "commands": int(info["total_commands_processed"]),
        "scripts": scripts,
    }


def commands_between(
    before: dict[str, int] | None, after: dict[str, int] | None
) -> dict[str, int] | None:
    """Commands and script calls Redis processed in between (less our two `INFO`s)."""
    if before is None or after is None:
        return None
    return {
        "commands": after["commands"] - before["commands"] - 2,
        "scripts": after["scripts"] - before["scripts"],
    }
