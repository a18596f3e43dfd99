"""Database writes, counted by the database itself: serverStatus `opcounters`.

mongoeco (the embedded database) and MongoDB both keep them; a write is an
insert, update or delete command (a `find_one_and_update` counts as an
update). The counters are the server's, so on a shared MongoDB they include
other clients' writes: the bench's own server or the embedded one is exact.
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

WRITE_OPS = ("insert", "update", "delete")


async def opcounters(uri: str | None) -> dict[str, int] | None:
    if uri is None:
        return None
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        status = await client.get_default_database().command("serverStatus")
    except Exception:  # a server without serverStatus: no count rather than no bench
        return None
    finally:
        await client.close()
    counters = status.get("opcounters")
    return {key: int(value) for key, value in counters.items()} if counters else None


def writes_between(before: dict[str, int] | None, after: dict[str, int] | None) -> int | None:
    if before is None or after is None:
        return None
    return sum(after.get(op, 0) - before.get(op, 0) for op in WRITE_OPS)
