"""The REST scenario: paging through a user's conversation list.

Lists page on an indexed key with range cursors, so the last page should cost
what the first costs; the report keeps both apart to show it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from bench.stats import summarize_ms
from bench.target import Target, fresh_user

CREATE_CONCURRENCY = 8
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)


class BenchError(Exception):
    """The service answered in a way the workload cannot measure."""


async def rest_list(
    target: Target, *, conversations: int = 200, page_size: int = 20, passes: int = 5
) -> dict[str, Any]:
    """Store `conversations`, then page through all of them `passes` times."""
    headers = target.auth(fresh_user("rest_list"))
    async with aiohttp.ClientSession(headers=headers, timeout=REQUEST_TIMEOUT) as session:
        create_s = await _create_conversations(session, target, conversations)
        pages: list[list[float]] = []
        complete_passes = 0
        for _ in range(passes):
            page_s, listed = await _page_through(session, target, page_size, conversations)
            pages.append(page_s)
            complete_passes += listed == conversations
    return {
        "params": {"conversations": conversations, "page_size": page_size, "passes": passes},
        "complete_passes": complete_passes,
        "pages_per_pass": len(pages[0]) if pages else 0,
        "create_ms": summarize_ms(create_s),
        "page_ms": summarize_ms([s for page_s in pages for s in page_s]),
        "first_page_ms": summarize_ms([page_s[0] for page_s in pages if page_s]),
        "last_page_ms": summarize_ms([page_s[-1] for page_s in pages if page_s]),
    }


async def _create_conversations(
    session: aiohttp.ClientSession, target: Target, count: int
) -> list[float]:
    """Create `count` conversations, a few at a time; each request's duration."""
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create(index: int) -> float:
        async with gate:
            began = time.perf_counter()
            body = {"title": f"bench conversation {index}"}
            async with session.post(target.url("/api/conversations"), json=body) as answer:
                if answer.status != 201:
                    raise BenchError(f"create conversation: {answer.status} {await answer.text()}")
                await answer.read()
            return time.perf_counter() - began

    return list(await asyncio.gather(*(create(index) for index in range(count))))


async def _page_through(
    session: aiohttp.ClientSession, target: Target, page_size: int, expected: int
) -> tuple[list[float], int]:
    """Follow `next_cursor` to the end; each page's duration and how many distinct
    conversations were listed. Bounded: a cursor that loops cannot run forever."""
    durations: list[float] = []
    seen: set[str] = set()
    cursor: str | None = None
    for _ in range(expected // page_size + 2):
        params = {"limit": str(page_size), **({"cursor": cursor} if cursor else {})}
        began = time.perf_counter()
        async with session.get(target.url("/api/conversations"), params=params) as answer:
            if answer.status != 200:
                raise BenchError(f"list conversations: {answer.status} {await answer.text()}")
            page = await answer.json()
        durations.append(time.perf_counter() - began)
        seen.update(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return durations, len(seen)
