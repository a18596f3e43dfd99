"""The change feed's cursor: a moment with an overlap, and what the holder already has.

A change is stamped with its writer's clock *before* it is committed, so a
change stamped at t may become visible after a read at t' > t by another
process (a slow write, a clock a little behind). A cursor that said "after
the moment I was read" would miss it for good. So a cursor's `floor` is the
moment it was made minus `MARGIN`, and the next read returns every change
stamped at or after the floor again, minus the versions listed in `sent`
(the versions within the window the holder already has): late changes are
found, nothing is sent twice. A change that takes longer than `MARGIN` from
stamp to commit (or a clock further behind) could still be missed; 10 s is
well beyond a write's time-out (2.5 s) and the skew of synchronised clocks.

Opaque to clients: base64url of `[1, floor in ms, [[id, revision], ...]]`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from server.errors import ValidationFailed

MARGIN = timedelta(seconds=10)
# Versions a cursor lists at most: beyond, the oldest are left out and only sent again.
SENT_MAX = 100
# The longest cursor this service issues (100 versions) is well below this, and a URL
# must hold it: request lines end at 8190 bytes.
MAX_LENGTH = 6_000
FORMAT = 1
# A conversation's version: its id and its `revision`; DELETED marks its deletion.
Version = tuple[str, int]
DELETED = -1


@dataclass(frozen=True, slots=True)
class SyncCursor:
    floor: datetime  # every change stamped at or after it is read again
    sent: frozenset[Version] = field(default_factory=frozenset)

    @staticmethod
    def at(moment: datetime, version: Version) -> SyncCursor:
        """The cursor of one change (a push): what follows it, and it, again, within the margin."""
        return SyncCursor(moment - MARGIN, frozenset({version}))

    def encode(self) -> str:
        milliseconds = int(self.floor.timestamp() * 1000)
        raw = orjson.dumps([FORMAT, milliseconds, sorted([list(v) for v in self.sent])])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def decode(text: str, *, field_name: str = "since") -> SyncCursor:
        try:
            if len(text) > MAX_LENGTH:
                raise ValueError("too long")
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            kind, milliseconds, sent = orjson.loads(raw)
            if kind != FORMAT or type(milliseconds) is not int or not isinstance(sent, list):
                raise ValueError(text)
            versions = frozenset(_version(item) for item in sent)
            floor = datetime.fromtimestamp(milliseconds / 1000, UTC)
        except (ValueError, TypeError, OverflowError, OSError, binascii.Error):
            raise ValidationFailed(
                f"Query parameter {field_name!r} is not a cursor this service issued",
                [{"field": field_name, "message": "invalid cursor"}],
            ) from None
        return SyncCursor(floor, versions)


def _version(item: object) -> Version:
    if not isinstance(item, list) or len(item) != 2:
        raise ValueError(item)
    conversation_id, revision = item
    if not isinstance(conversation_id, str) or type(revision) is not int:
        raise ValueError(item)
    return conversation_id, revision
