"""Uploads over the limit are refused while they stream in; files live as long as their use."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from server.files.store import FileStore
from server.storage.values import now
from server.typedefs import engine_key
from tests.conftest import Service, eventually
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.files_for_tests import form, png

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 1024 * 1024
BOUNDARY = "limit-test-boundary"
CHUNK = b"\0" * (64 * 1024)


async def open_upload(service: Service, headers: dict[str, str]) -> Any:
    """A raw connection that has sent the request head and the file part's head."""
    server = service.http.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    lines = [
        "POST /api/files HTTP/1.1",
        f"Host: {server.host}:{server.port}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    return reader, writer


def part_head() -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()


async def send_until_answered(reader: Any, writer: Any, *, chunked: bool, most: int) -> Any:
    """Write body bytes until the server answers; return its status line and what was sent."""
    answer = asyncio.ensure_future(reader.readline())
    sent = 0
    first = part_head()
    while not answer.done() and sent < most:
        data = first + CHUNK if sent == 0 else CHUNK
        writer.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        sent += len(data)
        try:
            await asyncio.wait_for(writer.drain(), 5)
        except (ConnectionError, TimeoutError):
            break
        await asyncio.sleep(0)
    status_line = await asyncio.wait_for(answer, 10)
    writer.close()
    return status_line, sent


async def test_an_oversized_upload_is_refused_while_it_streams_in(service: Service) -> None:
    await service.reconfigure(UPLOAD_MAX_BYTES=str(LIMIT))
    declared = {**service.headers(), "Content-Length": str(200 * 1024 * 1024)}
    reader, writer = await open_upload(service, declared)

    status_line, sent = await send_until_answered(reader, writer, chunked=False, most=200 * LIMIT)

    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    assert sent < 16 * LIMIT  # answered from its declared length, long before 200 MB

    unsized = {**service.headers(), "Transfer-Encoding": "chunked"}
    reader, writer = await open_upload(service, unsized)

    status_line, sent = await send_until_answered(reader, writer, chunked=True, most=200 * LIMIT)

    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    assert sent < 16 * LIMIT  # counted as it arrived: within the first megabytes
    assert await service.db["files.files"].count_documents({}) == 0


async def test_unused_files_are_swept_and_used_ones_go_with_their_conversation(
    service: Service,
) -> None:
    await service.reconfigure(UNUSED_FILE_HOURS="0.001")  # 3.6 s; swept every 0.9 s
    ws = await service.ws()
    used = await service.http.post(
        "/api/files", data=form(png(20, 20), "kept.png"), headers=service.headers()
    )
    used_id = (await used.json())["id"]
    frames = await ws.turn("Keep this", attachments=[used_id])
    assert frames[-1]["type"] == "turn.done", frames[-1]
    unused = await service.http.post(
        "/api/files", data=form(png(20, 20), "dropped.png"), headers=service.headers()
    )
    unused_id = (await unused.json())["id"]

    async def swept() -> bool:
        meta = await service.http.get(f"/api/files/{unused_id}/meta", headers=service.headers())
        return meta.status == 404

    assert await eventually(swept, timeout=10)
    kept = await service.http.get(f"/api/files/{used_id}/meta", headers=service.headers())
    assert kept.status == 200  # used by a stored message: not swept
    conversation = frames[0]["conversation_id"]
    deleted = await service.http.delete(
        f"/api/conversations/{conversation}", headers=service.headers()
    )
    assert deleted.status == 204
    gone = await service.http.get(f"/api/files/{used_id}/meta", headers=service.headers())
    assert gone.status == 404
    assert await service.db["files.chunks"].count_documents({}) == 0
    await ws.close()


async def test_recovering_a_dead_processs_turn_keeps_its_files(
    service: Service, fake: FakeAnthropic
) -> None:
    """A process killed between storing a question and marking its files used (the
    turn's first step) must not leave them to the unused-file sweep: recovery marks them."""
    fake.script(Reply.endless(chunk="tick ", delay=0.02))
    uploaded = await service.http.post(
        "/api/files", data=form(png(20, 20), "kept.png"), headers=service.headers()
    )
    file_id = (await uploaded.json())["id"]
    ws = await service.ws()
    started = await ws.turn_started("Keep this", attachments=[file_id])
    await ws.until("turn.delta")
    files = service.db["files.files"]
    # As if the process had died before its turn's first step.
    await files.update_one(
        {"_id": file_id}, {"$set": {"metadata.used": False, "metadata.conversations": []}}
    )

    # Another process's sweep finds the turn's owner dead.
    assert await service.http.server.app[engine_key].recover(everything=True) == 1
    await ws.until("turn.error")
    meta = (await files.find_one({"_id": file_id}))["metadata"]
    assert (meta["used"], meta["conversations"]) == (True, [started["conversation_id"]])
    await ws.close()


# A process that stores a file the way an upload does, and stalls after a few chunks.
STALLING_UPLOAD = """
import asyncio, sys
from pymongo import AsyncMongoClient
from server.files.store import CHUNK_BYTES, FileStore, NewFile
from server.identity import Identity

async def chunks():
    for _ in range(3):  # GridFS holds the last one back until it is full or closed
        yield b"%PDF-" + bytes(CHUNK_BYTES - 5)
    print("written", flush=True)
    await asyncio.Event().wait()

async def main():
    db = AsyncMongoClient(sys.argv[1]).get_default_database()
    half = NewFile("half.pdf", "application/pdf", pages=1)
    await FileStore(db).save(Identity("default", "alice"), half, chunks())

asyncio.run(main())
"""


async def test_a_process_killed_mid_upload_leaves_no_file_visible(service: Service) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STALLING_UPLOAD, service.env["MONGODB_URI"],
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    assert await asyncio.wait_for(child.stdout.readline(), 20) == b"written\n"

    async def chunks_stored() -> bool:
        return await service.db["files.chunks"].count_documents({}) >= 2

    assert await eventually(chunks_stored)
    child.send_signal(signal.SIGKILL)
    await child.wait()

    assert await service.db["files.files"].count_documents({}) == 0  # never visible
    (marker,) = await service.db["file_uploads"].find().to_list()
    meta = await service.http.get(f"/api/files/{marker['_id']}/meta", headers=service.headers())
    assert meta.status == 404
    await FileStore(service.db).sweep(now(), abandoned_before=now())
    assert await service.db["files.chunks"].count_documents({}) == 0
    assert await service.db["file_uploads"].count_documents({}) == 0


def rss_bytes() -> int:
    """This process's resident memory now (Linux), where the in-process service runs."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


async def test_memory_stays_flat_while_twenty_clients_upload_at_once(service: Service) -> None:
    size, clients = 20 * 1024 * 1024, 20  # the issue: 20 clients, 20 MB each
    chunk = b"\x89PNG\r\n\x1a\n" + bytes(64 * 1024 - 8)  # a PNG's signature, then nothing valid

    async def body() -> AsyncIterator[bytes]:
        yield part_head()
        for _ in range(size // len(chunk)):
            yield chunk
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    async def one() -> int:
        response = await service.http.post(
            "/api/files",
            data=body(),
            headers={
                **service.headers(),
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            },
        )
        return response.status

    peak, before = 0, rss_bytes()

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_bytes())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    statuses = await asyncio.gather(*(one() for _ in range(clients)))
    sampler.cancel()

    assert statuses == [422] * clients  # each read whole (to disk), then found corrupt
    # 400 MB go through. At 10 MB each, held in memory while received, it measured 216 MB;
    # spooled, 15.
    assert peak - before < 64 * 1024 * 1024, (peak - before) // 1024**2
