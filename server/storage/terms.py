"""Search terms: a message's words, stored with it so that search is an index lookup.

A search used to be a case-insensitive substring scan of the caller's
messages: its cost grew with each user's history, and on the embedded
database any non-ASCII text in the collection sent it to Python, decoding
every message of every user. Now each finished message carries `terms`, its
distinct words folded (case, accents, compatibility forms) and prefixed by a
short hash of its owner; the `search_terms` index on that array (multikey)
finds the messages holding a word beginning with each word asked, and a
search costs what its matches cost, on MongoDB (index bounds of an anchored
regex) and on the embedded database (server/storage/embedded_fixes/
narrowing.py, fix 7) alike.

The owner prefix keeps a common word's index range to one user's messages;
it is not what isolates users (every search also filters on the owner's
fields: a hash collision only widens the range read). Words are runs of
letters, digits and `_`: a word in the middle of another ("ello" in
"hello") is not found, as in any word index; docs/decisions.md says why
that trade was taken.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from server.identity import Identity
from server.storage.client import Document

FIELD = "terms"
WORD = re.compile(r"\w+")
# A longer "word" (a hash, a URL's path run together) is cut: a query for its start finds it.
WORD_CHARS = 40
# The terms one message keeps (its first distinct words): ~10,000 words of prose. Each
# costs the embedded database ~25 µs to index (docs/decisions.md), so a book pasted in
# is indexed by its beginning.
MOST_TERMS = 2_000
OWNER_CHARS = 8
# The projection of every other read of messages: terms are for the index, not for readers.
UNSEARCHED = {FIELD: 0}


def fold(text: str) -> str:
    """`text` as terms compare it: compatibility forms and accents gone, case folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The distinct folded words of `text`, in order of first appearance."""
    return list(dict.fromkeys(word[:WORD_CHARS] for word in WORD.findall(fold(text))))


def owner_key(tenant_id: str, user_id: str) -> str:
    digest = hashlib.blake2b(f"{tenant_id}\0{user_id}".encode(), digest_size=OWNER_CHARS // 2)
    return digest.hexdigest()


def terms(tenant_id: str, user_id: str, text: str) -> list[str]:
    """What `text` is stored under for its owner."""
    owner = owner_key(tenant_id, user_id)
    return [f"{owner}:{word}" for word in words(text)[:MOST_TERMS]]


def with_terms(message: Document) -> Document:
    """`message` with the terms of its `content`: how every finished message is written."""
    text = str(message.get("content") or "")
    return {**message, FIELD: terms(message["tenant_id"], message["user_id"], text)}


def matching(identity: Identity, query: str) -> list[Document]:
    """Conditions, one per word of `query`, that a message holding them all meets.

    Each is an anchored, case-sensitive literal regex on `terms` (the terms are
    folded already): MongoDB bounds it on the index, and so does the embedded
    database's fix 7. A query of no words matches nothing (the caller refuses it).
    """
    owner = owner_key(identity.tenant_id, identity.user_id)
    return [{FIELD: {"$regex": "^" + re.escape(f"{owner}:{word}")}} for word in words(query)]
