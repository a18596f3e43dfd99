"""The checked-in nginx config (deploy/nginx.conf), run by Debian's real nginx in front of
the service: TLS, the WebSocket upgrade, and SSE events passed on as they come.

How nginx is run around the site file: `tests/nginx_proxy.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import WS, Service, new_turn_id, text_of
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.nginx_proxy import NGINX, Proxy, running_nginx
from tests.sse_client import SseReader, sse_text

pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (`.ci/run` installs Debian's nginx)"
)


@pytest.fixture
async def nginx(service: Service, tmp_path: Path) -> AsyncIterator[Proxy]:
    assert service.http.port is not None
    async with running_nginx(tmp_path / "nginx", [service.http.port]) as proxy:
        yield proxy


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_websocket_turn_through_nginx(
    service: Service, fake: FakeAnthropic, nginx: Proxy, http: aiohttp.ClientSession
) -> None:
    fake.script(Reply.text(["Through ", "the ", "proxy."], delay=0.01))
    raw = await http.ws_connect(f"{nginx.url}/ws", headers=service.headers(), ssl=nginx.tls)
    ws = WS(raw)
    assert (await ws.recv())["type"] == "ready"
    frames = await ws.turn("Hello")
    await ws.close()
    assert frames[-1]["type"] == "turn.done"
    assert text_of(frames) == "Through the proxy."


async def test_sse_events_pass_through_nginx_as_they_come(
    service: Service, fake: FakeAnthropic, nginx: Proxy, http: aiohttp.ClientSession
) -> None:
    chunks = [f"part{n} " for n in range(6)]
    delay = 0.2
    fake.script(Reply.text(chunks, delay=delay))
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    async with http.post(
        f"{nginx.url}/api/turns",
        json={"turn_id": new_turn_id(), "content": "Stream it"},
        headers=service.headers(),
        ssl=nginx.tls,
    ) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        reader = SseReader(response)
        events = await reader.until("turn.delta")
        arrivals.append(loop.time())
        # What the upstream has sent when the first delta reached us: not yet the last chunk.
        sent_at_first_delta = fake.requests[0].events_sent
        while events[-1].event == "turn.delta":
            events += await reader.until("turn.delta", "turn.done", "turn.error")
            arrivals.append(loop.time())

    assert events[-1].event == "turn.done"
    assert sse_text(events) == "".join(chunks)
    before_text = 3  # message_start, content_block_start, ping
    assert sent_at_first_delta < before_text + len(chunks), "buffered until the last chunk"
    # Buffered, everything would arrive at once; streamed, it is spread over the deltas.
    assert arrivals[-1] - arrivals[0] > (len(chunks) - 1) * delay / 2, arrivals


async def test_plain_http_redirects_and_https_answers_with_hsts(
    nginx: Proxy, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{nginx.plain_url}/healthz", allow_redirects=False) as response:
        assert response.status == 301
        assert response.headers["Location"].startswith("https://")
    async with http.get(f"{nginx.url}/healthz", ssl=nginx.tls) as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_metrics_are_not_served_through_the_proxy(
    nginx: Proxy, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{nginx.url}/metrics", ssl=nginx.tls) as response:
        assert response.status == 404
