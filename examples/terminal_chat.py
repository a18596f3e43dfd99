"""A terminal chat with the service, through the reference client (clients/python/).

    PYTHONPATH=clients/python python examples/terminal_chat.py http://127.0.0.1:8080 alice

Signs in with dev sign-in as the name given (or uses CHAT_TOKEN), then each
line typed is a question in one conversation; answers stream as they come,
and a dropped connection is resumed without losing a word. Ctrl-D quits.
"""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp
from chat_client import ChatClient


async def main(base_url: str, user: str) -> None:
    token = os.environ.get("CHAT_TOKEN")
    if not token:  # dev sign-in: only on a service on loopback with no JWT setting
        async with aiohttp.ClientSession() as http:
            signed = await http.post(f"{base_url}/auth/dev-token", json={"user": user})
            token = (await signed.json())["token"]
    async with ChatClient(base_url, token) as client:
        socket = await client.connect()
        conversation_id = None
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if not line.strip():
                continue
            fields = {"conversation_id": conversation_id} if conversation_id else {}
            async for event in socket.ask(line.strip(), **fields):
                if event["type"] == "turn.started":
                    conversation_id = event["conversation_id"]
                elif event["type"] == "turn.delta":
                    print(event["text"], end="", flush=True)
                elif event["type"] == "turn.error":
                    print(f"[{event['code']}: {event['message']}]", end="")
            print()
        await socket.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "terminal"))
