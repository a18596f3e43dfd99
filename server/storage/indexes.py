"""The collections' indexes, made to match at every start-up.

Uniqueness that a turn start depends on rests on `_id`, never on a compound
unique index: mongoeco, the embedded database, checks a compound unique index
by decoding every document of the collection on each insert and each update,
so such an index makes every write slower as the collection grows. A turn's
`_id` is its (tenant, user, turn_id); a message's `seq` is unique by
construction (allocated by one atomic `$inc` on its conversation), so the
`(conversation_id, seq)` index is unique only on MongoDB, where it is a cheap
second guard, and a plain index on the embedded database.

SINGLE_FIELD_COST: on the embedded database every one-field index that is not
unique is also a "multikey" index, kept as one more SQLite index over a table
shared by all of them (`multikey_entries`, which holds the elements of indexed
arrays). Each holds every row of that table, so each array element written
(a message's search terms) is inserted into every one of them: five such
indexes made a term cost five index inserts. So an index has one field only
where it must: the
search terms (the multikey index itself) and the tombstones' TTL (MongoDB's
TTL indexes are one-field). Elsewhere `_id` is added as a second key, which
serves the same queries.

The change feed reads a user's conversations changed since a moment
(`owner_changed`), its deletions since a moment (`tombstones.owner_deleted`,
the tombstones expiring through a TTL index whose age is a setting) and its
running turns (`turns.owner_status`): each read is a range of one user's index
entries, whatever the size of the user's history.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase


def _owner_list(name: str, *narrowed: tuple[str, int]) -> IndexModel:
    return IndexModel(
        [
            ("tenant_id", ASCENDING),
            ("user_id", ASCENDING),
            ("archived", ASCENDING),
            *narrowed,
            ("pinned", ASCENDING),
            ("updated_at", DESCENDING),
            ("_id", DESCENDING),
        ],
        name=name,
    )


CONVERSATION_SEQ = [("conversation_id", ASCENDING), ("seq", ASCENDING)]

INDEXES: dict[str, list[IndexModel]] = {
    "conversations": [
        # The list: one user's (un)archived ones, pinned first, then by activity; and the
        # same narrowed to a project or a tag (storage/shelves.py). The project one also
        # serves the projects' counts, the tag one (multikey) the tags'.
        _owner_list("owner_list"),
        _owner_list("owner_project", ("project", ASCENDING)),
        _owner_list("owner_tag", ("tags", ASCENDING)),
        # The change feed: what changed since a cursor's moment (storage/changes.py).
        IndexModel(
            [
                ("tenant_id", ASCENDING),
                ("user_id", ASCENDING),
                ("changed_at", ASCENDING),
                ("_id", ASCENDING),
            ],
            name="owner_changed",
        ),
    ],
    "messages": [
        IndexModel(CONVERSATION_SEQ, unique=True, name="conversation_seq"),
        # A page's siblings: the children of its messages' parents.
        IndexModel(
            [("conversation_id", ASCENDING), ("parent_id", ASCENDING), ("seq", ASCENDING)],
            name="conversation_parent",
        ),
        IndexModel(
            [("tenant_id", ASCENDING), ("user_id", ASCENDING), ("created_at", ASCENDING)],
            name="owner_created",
        ),
        # Search: each finished message's words, prefixed by its owner (storage/terms.py).
        IndexModel([("terms", ASCENDING)], name="search_terms"),
    ],
    "turns": [  # `_id` is (tenant, user, turn_id): the primary key is the idempotency claim
        IndexModel([("status", ASCENDING), ("lease_expires_at", ASCENDING)], name="status_lease"),
        # A deleted conversation's turns. Never a one-field index where another does: see
        # SINGLE_FIELD_COST.
        IndexModel([("conversation_id", ASCENDING), ("_id", ASCENDING)], name="conversation_turns"),
        # A user's running turns (`GET /api/turns?status=running`, the change feed).
        IndexModel(
            [("tenant_id", ASCENDING), ("user_id", ASCENDING), ("status", ASCENDING)],
            name="owner_status",
        ),
    ],
    # Share links: one lookup by the token's hash; a conversation's links, newest first.
    "shares": [
        IndexModel([("token_hash", ASCENDING)], unique=True, name="token_hash"),
        IndexModel(
            [
                ("tenant_id", ASCENDING),
                ("user_id", ASCENDING),
                ("conversation_id", ASCENDING),
                ("created_at", DESCENDING),
            ],
            name="owner_conversation",
        ),
    ],
    "tombstones": [  # deleted conversations, for the change feed; the TTL index is a setting's
        IndexModel(
            [("tenant_id", ASCENDING), ("user_id", ASCENDING), ("deleted_at", ASCENDING)],
            name="owner_deleted",
        ),
    ],
}
TOMBSTONE_EXPIRY = "expiry"

# Indexes of earlier versions, dropped where present. `owner_turn` was the unique
# (tenant_id, user_id, turn_id) that the turn's `_id` replaced; `owner_recent` the list's
# before pins (`owner_list` orders by them too); `status` (messages) served no query;
# `conversation` (turns) is `conversation_turns` now (SINGLE_FIELD_COST).
RETIRED: dict[str, list[str]] = {
    "turns": ["owner_turn", "conversation"],
    "conversations": ["owner_recent"],
    "messages": ["status"],
}


def wanted(*, embedded: bool, tombstone_seconds: int) -> dict[str, list[IndexModel]]:
    """The indexes for this database: on the embedded one, no compound index is unique.

    Tombstones expire `tombstone_seconds` after the deletion (SYNC_TOMBSTONE_DAYS)."""
    expiry = IndexModel(
        [("deleted_at", ASCENDING)], name=TOMBSTONE_EXPIRY, expireAfterSeconds=tombstone_seconds
    )
    indexes = {**INDEXES, "tombstones": [*INDEXES["tombstones"], expiry]}
    if not embedded:
        return indexes
    return {
        collection: [_plain(index) if _compound_unique(index) else index for index in models]
        for collection, models in indexes.items()
    }


async def ensure_indexes(
    db: AsyncDatabase[dict[str, Any]], *, embedded: bool, tombstone_seconds: int
) -> None:
    """Drop retired indexes and those whose options changed (uniqueness, a TTL), then create
    what is missing."""
    for collection, indexes in wanted(
        embedded=embedded, tombstone_seconds=tombstone_seconds
    ).items():
        present = {index["name"]: index async for index in await db[collection].list_indexes()}
        options = {str(index.document["name"]): _options(index.document) for index in indexes}
        stale = [
            name
            for name, index in present.items()
            if name in RETIRED.get(collection, ())
            or options.get(name, _options(index)) != _options(index)
        ]
        for name in stale:
            await db[collection].drop_index(name)
        await db[collection].create_indexes(indexes)


def _unique(spec: Any) -> bool:
    return bool(spec.get("unique", False))


def _options(spec: Any) -> tuple[bool, int | None]:
    """What makes an index stale when it differs: its uniqueness and its expiry."""
    expiry = spec.get("expireAfterSeconds")
    return _unique(spec), None if expiry is None else int(expiry)


def _compound_unique(index: IndexModel) -> bool:
    return _unique(index.document) and len(index.document["key"]) > 1


def _plain(index: IndexModel) -> IndexModel:
    """The same keys and name, without `unique`."""
    return IndexModel(list(index.document["key"].items()), name=index.document["name"])
