"""The values every stored document is made with: new ids and the time, as BSON keeps them."""

from __future__ import annotations

from datetime import UTC, datetime

from bson import ObjectId


def now() -> datetime:
    # Millisecond precision: what BSON stores, so a value compares equal after a round trip.
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def new_id() -> str:
    return str(ObjectId())
