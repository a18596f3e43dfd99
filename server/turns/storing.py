"""A turn's ending, written until it is stored: the one write that must not be lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server.errors import StorageUnavailable
from server.storage.turn_records import Ending, Outcome, Progress, TurnRecord
from server.storage.turns import TurnStore

log = logging.getLogger(__name__)

# Retried first after this, doubling up to the cap.
RETRY_SECONDS = (0.05, 2.0)


async def store_ending(
    turns: TurnStore,
    record: TurnRecord,
    progress: Progress,
    outcome: Outcome,
    final_seq: int,
    *,
    closing: asyncio.Event,
) -> Ending:
    """Write the ending, retrying with backoff until it is stored or the process stops.

    Giving up (only once `closing` is set) leaves the turn `running` in storage
    with its last checkpoint; recovery marks it interrupted later, and the
    followers are told `storage_unavailable` now."""
    delay, cap = RETRY_SECONDS
    while True:
        try:
            return await turns.finalise(record, progress, outcome, final_seq)
        except Exception as error:
            if closing.is_set():
                log.error("could not store the end of turn %s: %s", record.turn_id, error)
                unsaved = StorageUnavailable("The answer could not be saved.").describe()
                return Ending(
                    record.turn_document(status="error", error=unsaved),
                    record.assistant_document(
                        progress.text, "error", blocks=progress.blocks, error=unsaved
                    ),
                    ours=False,
                    stored=False,
                )
            log.warning(
                "could not store the end of turn %s, retrying in %.2f s: %s",
                record.turn_id,
                delay,
                error,
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), delay)
        delay = min(delay * 2, cap)
