"""`python -m bench.caching`: what prompt caching saves on a long conversation, as billed.

One 20-turn conversation with a 2,000-token system prompt and the built-in
tools, run twice through the service (in this process, on the embedded
database or `MONGODB_URI`): once with `PROMPT_CACHE=on`, once `off`. The model
is `tests/fake_anthropic.py`, whose prompt cache follows the API's rules
(`tests/fake_cache.py`), so the reads and writes are what the service's
breakpoints earn, not assumed. Billed input counts cache writes at 1.25 x and
reads at 0.1 x the input price; the figure is the saving of `on` over `off`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from server.app import build_app
from server.config import load_settings
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.fake_cache import count_tokens

TURNS = 20
SYSTEM_WORDS = "You answer questions about a shipping company's parcels, rates and routes. "
WRITE, READ = 1.25, 0.1  # cache write and read, in input prices
ANSWER = (
    "Your parcel left the sorting centre this morning and is on the regional van. "
    "It should reach the pickup point by tomorrow noon; you will get a text with the code. "
) * 3


def system_prompt(tokens: int) -> str:
    """A prompt of about `tokens` tokens, as the fake counts them."""
    text = SYSTEM_WORDS
    while count_tokens({"type": "text", "text": text}) < tokens:
        text += SYSTEM_WORDS
    return text


@asynccontextmanager
async def service(fake: FakeAnthropic, cache: str, data_dir: str) -> AsyncIterator[str]:
    env = {
        "DATA_DIR": data_dir,
        "ANTHROPIC_API_KEY": "bench",
        "ANTHROPIC_BASE_URL": fake.base_url,
        "UPSTREAM_MAX_RETRIES": "0",
        "CHAT_MODELS": "claude-sonnet-4-5",
        "CHAT_TITLES": "off",
        "PROMPT_CACHE": cache,
    }
    if os.environ.get("MONGODB_URI"):
        env["MONGODB_URI"] = os.environ["MONGODB_URI"]
    server = TestServer(build_app(load_settings(env)), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def conversation(
    base: str, fake: FakeAnthropic, system: str, user: str
) -> list[dict[str, Any]]:
    """Each turn's `usage`, for `TURNS` questions in one conversation."""
    async with aiohttp.ClientSession() as http:
        signed = await (await http.post(f"{base}/auth/dev-token", json={"user": user})).json()
        headers = {"Authorization": f"Bearer {signed['token']}"}
        created = await http.post(
            f"{base}/api/conversations", json={"system_prompt": system}, headers=headers
        )
        conversation_id = (await created.json())["id"]
        usages = []
        async with http.ws_connect(f"{base}/ws", headers=headers) as ws:
            await ws.receive_json()  # ready
            for number in range(TURNS):
                fake.script(Reply.text(ANSWER.split(" "), output_tokens=len(ANSWER) // 4))
                await ws.send_json(
                    {
                        "type": "turn.start",
                        "turn_id": f"{user}-{number}",
                        "conversation_id": conversation_id,
                        "content": f"Question {number + 1}: where is parcel {1000 + number}?",
                    }
                )
                while (frame := await ws.receive_json())["type"] not in ("turn.done", "turn.error"):
                    pass
                if frame["type"] != "turn.done":
                    raise RuntimeError(f"turn {number} failed: {frame}")
                usages.append(frame["usage"])
        return usages


def billed_input(usages: list[dict[str, Any]]) -> float:
    return sum(
        u["input_tokens"]
        + WRITE * u["cache_creation_input_tokens"]
        + READ * u["cache_read_input_tokens"]
        for u in usages
    )


async def run(system_tokens: int) -> dict[str, Any]:
    system = system_prompt(system_tokens)
    results: dict[str, Any] = {}
    for cache in ("off", "on"):
        fake = FakeAnthropic()  # a cold cache for each run
        await fake.start()
        try:
            with tempfile.TemporaryDirectory() as data_dir:
                async with service(fake, cache, data_dir) as base:
                    usages = await conversation(base, fake, system, f"bench-{cache}")
        finally:
            await fake.close()
        results[cache] = {
            "billed_input_tokens": round(billed_input(usages)),
            "prompt_tokens": sum(
                u["input_tokens"] + u["cache_creation_input_tokens"] + u["cache_read_input_tokens"]
                for u in usages
            ),
            "cache_read_input_tokens": sum(u["cache_read_input_tokens"] for u in usages),
            "cost_usd": round(sum(u["cost_usd"] for u in usages), 6),
        }
    off, on = results["off"]["billed_input_tokens"], results["on"]["billed_input_tokens"]
    results["saving_percent"] = round(100 * (1 - on / off), 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system-tokens", type=int, default=2000)
    args = parser.parse_args()
    results = asyncio.run(run(args.system_tokens))
    print(json.dumps(results, indent=2))
    saving = results["saving_percent"]
    print(f"{TURNS} turns: billed input {saving} % lower with PROMPT_CACHE=on (target: >= 70 %)")


if __name__ == "__main__":
    main()
