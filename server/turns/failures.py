"""How failures around a turn are reported: to its followers as errors, to operators as one line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from server.errors import DomainError, InternalError, UpstreamFailure
from server.events import TurnEvent
from server.storage.turn_records import TurnRecord

log = logging.getLogger("server.turns.engine")  # the name operators already filter on


async def guarded(turn_id: str, events: AsyncIterator[TurnEvent]) -> AsyncIterator[TurnEvent]:
    """A follower's events; a failure of ours reaches its client as an error, never as silence."""
    try:
        async for event in events:
            yield event
    except DomainError:
        raise
    except Exception as error:
        log.exception("following turn %s failed", turn_id)
        raise InternalError("Following this turn failed; resume it to try again.") from error
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def log_failure(record: TurnRecord, error: DomainError) -> None:
    """One line per failed turn, naming what an operator needs to act on."""
    upstream = error if isinstance(error, UpstreamFailure) else None
    log.warning(
        "turn %s of user %s/%s failed: %s (upstream status %s, request %s): %s",
        record.turn_id,
        record.identity.tenant_id,
        record.identity.user_id,
        error.code,
        upstream.upstream_status if upstream else None,
        upstream.request_id if upstream else None,
        error.detail,
    )
