"""Attachments in MongoDB through GridFS: one code path for the embedded database and a cluster.

PyMongo's `AsyncGridFSBucket` works against mongoeco (tried: upload, download,
delete, its indexes), so the bytes live in `files.chunks` and each file's
document in `files.files`, with our fields under `metadata`. GridFS writes the
chunks first and the file's document last, when the upload closes: a process
killed mid-upload leaves chunks that no query of ours ever reaches, because
every read starts from the document. A marker in `file_uploads`, written
before the first chunk and removed after the document, lets the sweep find
those orphans by an index instead of scanning the chunks.
"""

from __future__ import annotations

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
    "file_uploads": [IndexModel([("started_at", ASCENDING)], name="started")],
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
        self.uploads = db["file_uploads"]

    async def ensure_indexes(self) -> None:
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
        stream = self.bucket.open_upload_stream_with_id(file_id, new.name, metadata=metadata)
        try:
            async for chunk in chunks:
                await stream.write(chunk)
        except BaseException:
            await stream.abort()  # the chunks written so far go; no document was written
            raise
        await stream.close()
        await self.uploads.delete_one({"_id": file_id})
        doc = await self.files.find_one({"_id": file_id})
        assert doc is not None
        return doc

    async def get(self, identity: Identity, file_id: str) -> Document:
        """The file's document; another user's is not found, like a missing one."""
        doc = await self.files.find_one({"_id": file_id})
        if doc is None or not _owned(doc, identity):
            raise NotFound(f"No file {file_id!r}")
        return doc

    async def chunks(self, file_id: str) -> AsyncIterator[bytes]:
        """The file's bytes, a chunk at a time."""
        try:
            stream = await self.bucket.open_download_stream(file_id)
        except NoFile:
            raise NotFound(f"No file {file_id!r}") from None
        while chunk := await stream.readchunk():
            yield chunk

    async def read(self, file_id: str) -> bytes:
        return b"".join([chunk async for chunk in self.chunks(file_id)])

    async def delete(self, identity: Identity, file_id: str) -> None:
        await self.get(identity, file_id)
        await self._remove(file_id)

    async def claim(
        self, identity: Identity, file_ids: Sequence[str], conversation_id: str
    ) -> list[Document]:
        """The caller's files, in the order asked, now used by the conversation (kept with it).

        One unknown or another user's id is a 404 naming it, and nothing is claimed."""
        found = {
            doc["_id"]: doc
            async for doc in self.files.find({"_id": {"$in": list(file_ids)}})
            if _owned(doc, identity)
        }
        for file_id in file_ids:
            if file_id not in found:
                raise NotFound(f"No file {file_id!r} (in attachments)")
        await self.files.update_many(
            {"_id": {"$in": list(file_ids)}},
            {
                "$set": {"metadata.used": True},
                "$addToSet": {"metadata.conversations": conversation_id},
            },
        )
        return [found[file_id] for file_id in file_ids]

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

    async def sweep(self, unused_before: datetime) -> int:
        """Remove files no turn used since they were uploaded, and abandoned uploads' chunks."""
        removed = 0
        unused = {"metadata.used": False, "uploadDate": {"$lt": unused_before}}
        async for doc in self.files.find(unused, {"_id": 1}).limit(SWEEP_BATCH):
            await self._remove(doc["_id"])
            removed += 1
        stale = {"started_at": {"$lt": now() - ABANDONED_AFTER}}
        async for marker in self.uploads.find(stale).limit(SWEEP_BATCH):
            if await self.files.find_one({"_id": marker["_id"]}, {"_id": 1}) is None:
                await self.db[f"{BUCKET}.chunks"].delete_many({"files_id": marker["_id"]})
            await self.uploads.delete_one({"_id": marker["_id"]})
        return removed

    async def _remove(self, file_id: str) -> None:
        """The document first: the file is gone for readers before its chunks are."""
        await self.files.delete_one({"_id": file_id})
        await self.db[f"{BUCKET}.chunks"].delete_many({"files_id": file_id})


def _owned(doc: Document, identity: Identity) -> bool:
    meta = doc.get("metadata") or {}
    return bool(meta.get("tenant_id") == identity.tenant_id) and bool(
        meta.get("user_id") == identity.user_id
    )
