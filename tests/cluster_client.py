"""What a client checks of a turn followed across processes (tests/test_cluster*.py)."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import make_token
from tests.server_process import ServerProcess

AUTH = {"Authorization": f"Bearer {make_token('alice')}"}
ENDINGS = ("turn.done", "turn.cancelled", "turn.error")
# Every tenth word holds what the Redis batch format must carry through untouched:
# multi-byte UTF-8 (lengths are in bytes), newlines, digits and spaces like its headers.
WORDS = [f"w{i} " if i % 10 else f"ü{i} 日本\n{i} 2 t 9\n" for i in range(80)]


async def stored_answer(
    session: aiohttp.ClientSession, process: ServerProcess, conversation_id: str
) -> dict[str, Any]:
    """The conversation's last message as any process serves it from MongoDB."""
    url = f"{process.base_url}/api/conversations/{conversation_id}/messages"
    async with session.get(url, headers=AUTH) as response:
        answer: dict[str, Any] = (await response.json())["items"][-1]
    return answer


def deltas_text(frames: list[dict[str, Any]], *, up_to: int | None = None) -> str:
    return "".join(
        f["text"]
        for f in frames
        if f["type"] == "turn.delta" and (up_to is None or f["seq"] <= up_to)
    )


def assert_live_after(frames: list[dict[str, Any]], after_seq: int) -> None:
    """The owner's own events: deltas, never snapshots, each `seq` past the one before."""
    types = [f["type"] for f in frames]
    assert "turn.snapshot" not in types, types
    assert "turn.delta" in types, types
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(set(seqs)) and seqs[0] > after_seq, seqs


def as_client_sees(frames: list[dict[str, Any]], text: str = "") -> str:
    """The answer a client builds: deltas appended, a snapshot's content in place of the text."""
    for frame in frames:
        if frame["type"] == "turn.delta":
            text += frame["text"]
        elif frame["type"] == "turn.snapshot":
            text = frame["message"]["content"]
    return text


async def redis_available(session: aiohttp.ClientSession, process: ServerProcess) -> bool:
    async with session.get(f"{process.base_url}/metrics") as response:
        return "chat_redis_available 1.0" in await response.text()


def log_lines(process: ServerProcess, words: str) -> int:
    return sum(words in line for line in process.log_path.read_text().splitlines())
