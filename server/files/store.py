"""Attachments in MongoDB in GridFS's layout: one code path for the embedded database and a cluster.

PyMongo's `AsyncGridFSBucket` works against mongoeco (tried: upload, download,
delete), so the bytes live in `files.chunks` and each file's document in
`files.files`, with our fields under `metadata`, and the bucket reads them
back. Writing is ours, chunk by chunk, in the same layout: the bucket's upload
stream holds up to 32 MB of chunks in memory before its first insert, which
would undo the flat memory of a streamed upload. The chunks go first and the
file's document last: a process killed mid-upload leaves chunks that no query
of ours reaches, because every read starts from the document. A marker in
`file_uploads`, written before the first chunk and removed after the
document, lets the sweep find those orphans by an index, never by a scan.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from server.errors import NotFound
from server.identity import Identity
from server.storage.client import Document
from server.storage.values import now

BUCKET = "files"
CHUNK_BYTES = 255 * 1024  # GridFS's default: a chunk per read, memory flat however big the file
# A marker older than this belongs to an upload that died (no upload takes an hour).
ABANDONED_AFTER = timedelta(hours=1)
SWEEP_BATCH = 200

INDEXES: dict[str, list[IndexModel]] = {
    "files.files": [
        IndexModel([("metadata.used", ASCENDING), ("uploadDate", ASCENDING)], name="unused"),
        IndexModel([("metadata.conversations", ASCENDING)], name="conversations"),
    ],
    # GridFS's own index, made here since the bucket makes it only when it uploads. Not
    # unique: on the embedded database a compound unique index costs a scan per write
    # (storage/indexes.py), and (files_id, n) is unique by construction (one writer, n counted).
    "files.chunks": [
        IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], name="files_id_1_n_1")
    ],
    # Not a one-field index (storage/indexes.py, SINGLE_FIELD_COST).
    "file_uploads": [
        IndexModel([("started_at", ASCENDING), ("_id", ASCENDING)], name="started_id")
    ],
}


@dataclass(frozen=True, slots=True)
class NewFile:
    """What an upload produced, checked and processed, ready to store."""

    name: str
    media_type: str
    width: int | None = None
    height: int | None = None
    pages: int | None = None


def public_file(doc: Document) -> dict[str, Any]:
    meta = doc["metadata"]
    described: dict[str, Any] = {
        "id": doc["_id"],
        "name": doc["filename"],
        "media_type": meta["media_type"],
        "size": doc["length"],
    }
    for field in ("width", "height", "pages"):
        if meta.get(field) is not None:
            described[field] = meta[field]
    return described | {"created_at": doc["uploadDate"]}


class FileStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.bucket = AsyncGridFSBucket(db, bucket_name=BUCKET, chunk_size_bytes=CHUNK_BYTES)
        self.files = db[f"{BUCKET}.files"]
        self.chunks = db[f"{BUCKET}.chunks"]
        self.uploads = db["file_uploads"]

    async def ensure_indexes(self) -> None:
        present = {index["name"] async for index in await self.uploads.list_indexes()}
        if "started" in present:  # an earlier version's one-field index
            await self.uploads.drop_index("started")
        for collection, models in INDEXES.items():
            await self.db[collection].create_indexes(models)

    async def save(
        self, identity: Identity, new: NewFile, chunks: AsyncIterator[bytes]
    ) -> Document:
        """Store the bytes, then the document that makes the file visible; return it."""
        file_id = uuid.uuid4().hex
        await self.uploads.insert_one({"_id": file_id, "started_at": now()})
        metadata: Document = {
            **identity.scope,
            "media_type": new.media_type,
            "width": new.width,
            "height": new.height,
            "pages": new.pages,
            "used": False,
            "conversations": [],
        }
        length = 0
        try:
            async for n, chunk in _numbered(_exact(chunks)):
                await self.chunks.insert_one({"files_id": file_id, "n": n, "data": chunk})
                length += len(chunk)
            doc = {
                "_id": file_id,
                "length": length,
                "chunkSize": CHUNK_BYTES,
                "uploadDate": now(),
                "filename": new.name,
                "metadata": metadata,
            }
            await self.files.insert_one(doc)
        except BaseException:  # the chunks written so far go (the sweep, if we die first)
            await asyncio.shield(self.chunks.delete_many({"files_id": file_id}))
            raise
        await self.uploads.delete_one({"_id": file_id})
        return doc

    async def get(self, identity: Identity, file_id: str) -> Document:
        """The file's document; another user's is not found, like a missing one."""
        doc = await self.files.find_one({"_id": file_id})
        if doc is None or not _owned(doc, identity):
            raise NotFound(f"No file {file_id!r}")
        return doc

    async def content(self, file_id: str) -> AsyncIterator[bytes]:
        """The file's bytes, a chunk at a time."""
        try:
            stream = await self.bucket.open_download_stream(file_id)
        except NoFile:
            raise NotFound(f"No file {file_id!r}") from None
        while chunk := await stream.readchunk():
            yield chunk

    async def read(self, file_id: str) -> bytes:
        return b"".join([chunk async for chunk in self.content(file_id)])

    async def delete(self, identity: Identity, file_id: str) -> None:
        await self.get(identity, file_id)
        await self._remove(file_id)

    async def owned(self, identity: Identity, file_ids: Sequence[str]) -> list[Document]:
        """The caller's files, in the order asked, in one query by `_id`.

        One unknown or another user's id is a 404 naming it."""
        found = {
            doc["_id"]: doc
            async for doc in self.files.find({"_id": {"$in": list(file_ids)}})
            if _owned(doc, identity)
        }
        for file_id in file_ids:
            if file_id not in found:
                raise NotFound(f"No file {file_id!r} (in attachments)")
        return [found[file_id] for file_id in file_ids]

    async def mark_used(self, file_ids: Sequence[str], conversation_id: str) -> None:
        """A stored message uses these files: they live as long as the conversation now."""
        await self.files.update_many(
            {"_id": {"$in": list(file_ids)}},
            {
                "$set": {"metadata.used": True},
                "$addToSet": {"metadata.conversations": conversation_id},
            },
        )

    async def forget_conversation(self, conversation_id: str) -> int:
        """The conversation is deleted: its files go, unless another conversation uses them."""
        removed = 0
        async for doc in self.files.find({"metadata.conversations": conversation_id}):
            if doc["metadata"]["conversations"] == [conversation_id]:
                await self._remove(doc["_id"])
                removed += 1
            else:
                await self.files.update_one(
                    {"_id": doc["_id"]}, {"$pull": {"metadata.conversations": conversation_id}}
                )
        return removed

    async def sweep(self, unused_before: datetime, abandoned_before: datetime | None = None) -> int:
        """Remove files no turn used since they were uploaded, and abandoned uploads' chunks
        (of uploads begun before `abandoned_before`: an hour ago, unless told)."""
        removed = 0
        unused = {"metadata.used": False, "uploadDate": {"$lt": unused_before}}
        async for doc in self.files.find(unused, {"_id": 1}).limit(SWEEP_BATCH):
            await self._remove(doc["_id"])
            removed += 1
        abandoned_before = abandoned_before or now() - ABANDONED_AFTER
        stale = {"started_at": {"$lt": abandoned_before}}
        async for marker in self.uploads.find(stale).limit(SWEEP_BATCH):
            if await self.files.find_one({"_id": marker["_id"]}, {"_id": 1}) is None:
                await self.chunks.delete_many({"files_id": marker["_id"]})
            await self.uploads.delete_one({"_id": marker["_id"]})
        return removed

    async def _remove(self, file_id: str) -> None:
        """The document first: the file is gone for readers before its chunks are."""
        await self.files.delete_one({"_id": file_id})
        await self.chunks.delete_many({"files_id": file_id})


def _owned(doc: Document, identity: Identity) -> bool:
    meta = doc.get("metadata") or {}
    return bool(meta.get("tenant_id") == identity.tenant_id) and bool(
        meta.get("user_id") == identity.user_id
    )


async def _exact(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Chunks of exactly CHUNK_BYTES (the last one shorter), as GridFS readers expect."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        while len(pending) >= CHUNK_BYTES:
            yield pending[:CHUNK_BYTES]
            pending = pending[CHUNK_BYTES:]
    if pending:
        yield pending


async def _numbered(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    n = 0
    async for chunk in chunks:
        yield n, chunk
        n += 1
