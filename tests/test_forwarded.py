"""X-Forwarded-For is believed only from TRUSTED_PROXIES, and only as far as they reach."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import build_app
from server.config import load_settings
from server.forwarded import resolve_client
from server.logs import AccessLogger
from tests.conftest import eventually

PROXIES = tuple(ipaddress.ip_network(n) for n in ("127.0.0.1", "10.0.0.0/8", "fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # The peer is not a proxy we trust: whatever it claims is ignored.
        ("198.51.100.7", ["203.0.113.1"], "198.51.100.7"),
        # A trusted proxy with no header: the proxy itself.
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", ["203.0.113.1"], "203.0.113.1"),
        # A client that forges the header: its forgery is to the left of its real address.
        ("127.0.0.1", ["6.6.6.6, 203.0.113.1"], "203.0.113.1"),
        # Several trusted hops (two headers count as one list), then the client.
        ("127.0.0.1", ["6.6.6.6, 203.0.113.1", "10.1.2.3"], "203.0.113.1"),
        # Only proxies all the way: the leftmost one.
        ("127.0.0.1", ["10.0.0.9, 10.1.2.3"], "10.0.0.9"),
        # Garbage ends the walk at the last trusted hop, never a made-up address.
        ("127.0.0.1", ["203.0.113.1, unknown"], "127.0.0.1"),
        ("127.0.0.1", ["203.0.113.1:4711"], "127.0.0.1"),
        # IPv6, and an IPv4 peer seen through a dual-stack socket.
        ("fd00::1", ["2001:db8::5"], "2001:db8::5"),
        ("::ffff:127.0.0.1", ["203.0.113.1"], "203.0.113.1"),
    ],
)
def test_the_client_is_the_rightmost_hop_that_is_not_a_trusted_proxy(
    peer: str, forwarded_for: list[str], client: str
) -> None:
    assert resolve_client(peer, forwarded_for, PROXIES) == client


@pytest.fixture
async def serve(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Callable[..., Any]]:
    """Start the app with our access log and `settings`; returns its client."""
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    clients: list[TestClient[Any, Any]] = []

    async def start(**settings: str) -> TestClient[Any, Any]:
        app = build_app(load_settings({**env, **settings}))
        server = TestServer(app)
        await server.start_server(access_log_class=AccessLogger)
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def access_remotes(caplog: pytest.LogCaptureFixture, count: int) -> list[str]:
    """The client addresses of the first `count` access-log lines (written after each response)."""

    async def logged() -> list[str]:
        records = [r for r in caplog.records if r.name == "aiohttp.access"]
        return [r.remote for r in records] if len(records) >= count else []

    remotes: list[str] = await eventually(logged)
    return remotes


async def test_the_access_log_names_the_forwarded_client_behind_a_trusted_proxy(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    http = await serve(TRUSTED_PROXIES="127.0.0.1")
    for forwarded in ("203.0.113.9", "6.6.6.6, 203.0.113.10"):
        response = await http.get("/healthz", headers={"X-Forwarded-For": forwarded})
        assert response.status == 200
    response = await http.get("/api/me", headers={"X-Forwarded-For": "203.0.113.11"})
    assert response.status == 401  # errors are logged with the client too
    assert await access_remotes(caplog, 3) == ["203.0.113.9", "203.0.113.10", "203.0.113.11"]


async def test_without_trusted_proxies_the_header_is_ignored(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    http = await serve()
    response = await http.get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status == 200
    assert await access_remotes(caplog, 1) == ["127.0.0.1"]


async def test_a_peer_outside_trusted_proxies_cannot_claim_an_address(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    http = await serve(TRUSTED_PROXIES="10.0.0.0/8")
    response = await http.get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status == 200
    assert await access_remotes(caplog, 1) == ["127.0.0.1"]
