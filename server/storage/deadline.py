"""How long a request may wait for the database: answered within seconds, whatever it does.

A database that died is noticed at once (no server to select); one that hangs
(stopped, swapping, a network partition that drops packets) keeps its
sockets open, and the driver would wait for each reply without end (23-24 s
per request were measured with the embedded database stopped by SIGSTOP).
So each request's database work runs under one deadline
(`STORAGE_TIMEOUT_SECONDS`, 2.5 s), and past it the client is told
`storage_unavailable`, retryable. A deadline, not the driver's
per-operation `timeoutMS`: that would also cut the turn engine's own writes
(checkpoints, endings), which must wait for the database instead, retrying.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.errors import StorageUnavailable


@asynccontextmanager
async def storage_deadline(seconds: float) -> AsyncIterator[None]:
    """Run the block's database work within `seconds`, else `StorageUnavailable`.

    Wrap database work only: any `TimeoutError` inside reads as the database's."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise StorageUnavailable(
            f"The database did not answer within {seconds:g} s; try again shortly."
        ) from None
