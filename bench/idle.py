"""Idle authenticated WebSockets: what a connection costs the service while nothing happens.

RSS per connection is the service's VmRSS growth divided by the connections,
read after they have all said `ready` and settled; the database process is
read too (it should not grow: an idle socket touches no data).
"""

from __future__ import annotations

import asyncio
import random
import resource
import time
from typing import Any

from bench.clients import RelaySocket, new_session
from bench.phase import open_sockets
from bench.procfs import memory_kib
from bench.stats import summarize_ms
from bench.target import Target

WARM_UP_CONNECTIONS = 20  # so code paths and pools loaded once are not charged per socket
SETTLE_SECONDS = 2.0
PING_SAMPLES = 20


def raise_open_file_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard one (inherited by the processes started after)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _fd_budget() -> int:
    """Sockets this process may still open (the service's limit is inherited from it)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft - 200


async def idle(target: Target, *, connections: int) -> dict[str, Any]:
    if connections > _fd_budget():
        return {
            "params": {"connections": connections},
            "failed": f"RLIMIT_NOFILE allows {_fd_budget() + 200} files here; "
            f"{connections} sockets need more",
        }
    async with new_session() as session:
        warm = await open_sockets(session, target, WARM_UP_CONNECTIONS)
        await asyncio.sleep(SETTLE_SECONDS)
        before = memory_kib(target.pid)
        database_before = memory_kib(target.database_pid) if target.database_pid else None
        began = time.perf_counter()
        opened = await open_sockets(session, target, connections)
        connect_s = time.perf_counter() - began
        sockets = [s for s in opened if isinstance(s, RelaySocket)]
        await asyncio.sleep(SETTLE_SECONDS)
        after = memory_kib(target.pid)
        database_after = memory_kib(target.database_pid) if target.database_pid else None
        pings = [
            await _ping(s)
            for s in random.Random(3).sample(sockets, min(PING_SAMPLES, len(sockets)))
        ]
        await asyncio.gather(
            *(s.close() for s in [*sockets, *warm] if isinstance(s, RelaySocket)),
            return_exceptions=True,
        )
    failures = [s for s in opened if not isinstance(s, RelaySocket)]
    growth = None if before is None or after is None else after - before
    return {
        "params": {"connections": connections},
        "connected": len(sockets),
        "failed_connects": len(failures),
        "first_failure": repr(failures[0]) if failures else None,
        "connect_s": round(connect_s, 2),
        "connects_per_s": round(len(sockets) / connect_s, 1) if connect_s else None,
        "service_rss_before_kib": before,
        "service_rss_after_kib": after,
        "rss_per_connection_kib": None
        if growth is None or not sockets
        else round(growth / len(sockets), 2),
        "database_rss_growth_kib": None
        if database_before is None or database_after is None
        else database_after - database_before,
        "ping_ms": summarize_ms(pings),
    }


async def _ping(socket: RelaySocket) -> float:
    """A `ping` → `pong` round trip on an idle socket: it is alive and served."""
    began = time.perf_counter()
    await socket.ws.send_str('{"type":"ping"}')
    await socket.ws.receive(timeout=10)
    return time.perf_counter() - began
