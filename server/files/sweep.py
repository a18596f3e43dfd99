"""The periodic removal of files no turn used, and of uploads a dead process left half-done."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from server.files.store import FileStore
from server.storage.values import now

log = logging.getLogger(__name__)

# Often enough that a file outlives UNUSED_FILE_HOURS by a small fraction, at most 10 minutes.
MAX_INTERVAL_SECONDS = 600.0


def sweep_interval(unused_hours: float) -> float:
    return min(MAX_INTERVAL_SECONDS, max(0.05, unused_hours * 3600 / 4))


async def sweep_files(files: FileStore, unused_hours: float) -> None:
    """Every process sweeps: the deletes are idempotent, and each query is served by an index."""
    while True:
        await asyncio.sleep(sweep_interval(unused_hours))
        try:
            removed = await files.sweep(now() - timedelta(hours=unused_hours))
        except Exception as error:  # the database may be briefly away; try again next round
            log.warning("file sweep failed: %s", error)
            continue
        if removed:
            log.info("removed %d file(s) unused for %g hours", removed, unused_hours)
