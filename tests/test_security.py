"""Hostile input refused: foreign pages, DNS rebinding, oversized headers, leaks, file modes.

Everything goes through the real service on a real port; the oversized header
also through `python -m server`, whose connections are made the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from pathlib import Path

import aiohttp
import jwt
import pytest

from tests.api_client import expect_problem
from tests.conftest import JWT_SECRET, Service, make_token
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.server_process import ServerProcess, free_port
from tests.test_auth import running

UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def here(service: Service) -> str:
    """The Host under which the test client reaches the service."""
    server = service.http.server
    return f"{server.host}:{server.port}"


async def upgrade(service: Service, **headers: str) -> aiohttp.ClientResponse:
    return await service.http.get("/ws", headers={**UPGRADE, **service.headers(), **headers})


# The WebSocket's Origin


async def test_a_page_of_another_origin_cannot_open_the_websocket(service: Service) -> None:
    refused = await upgrade(service, Origin="https://evil.example")
    body = await expect_problem(refused, 403, "origin_not_allowed")
    assert "evil.example" in body["detail"]
    assert "Upgrade" not in refused.headers
    for near_miss in (f"http://{here(service)}.evil.example", "null", "http://127.0.0.1"):
        await expect_problem(await upgrade(service, Origin=near_miss), 403, "origin_not_allowed")


async def test_the_page_itself_and_clients_without_origin_open_it(service: Service) -> None:
    for origin in (f"http://{here(service)}", None):
        headers = {"Origin": origin} if origin else {}
        raw = await service.http.ws_connect("/ws", headers={**service.headers(), **headers})
        assert (await raw.receive_json())["type"] == "ready"
        await raw.close()


async def test_allowed_origins_are_let_in(service: Service) -> None:
    await service.reconfigure(ALLOWED_ORIGINS="https://app.example.com, capacitor://localhost")
    for origin in ("https://APP.example.com:443", "capacitor://localhost"):
        raw = await service.http.ws_connect("/ws", headers={**service.headers(), "Origin": origin})
        assert (await raw.receive_json())["type"] == "ready"
        await raw.close()
    await expect_problem(
        await upgrade(service, Origin="https://app.example.com:8443"), 403, "origin_not_allowed"
    )


async def test_behind_a_trusted_proxy_the_forwarded_host_is_the_origin_to_match(
    service: Service,
) -> None:
    proxied = {"Origin": "https://chat.example.com", "X-Forwarded-Host": "chat.example.com"}
    # Not from a trusted proxy: X-Forwarded-Host is anyone's to send, so it is ignored.
    await expect_problem(await upgrade(service, **proxied), 403, "origin_not_allowed")
    await service.reconfigure(TRUSTED_PROXIES="127.0.0.1")
    raw = await service.http.ws_connect("/ws", headers={**service.headers(), **proxied})
    assert (await raw.receive_json())["type"] == "ready"
    await raw.close()
    # nginx's `Host $host` carries no port: the default port of the page's scheme is meant.
    direct = {"Origin": "https://chat.example.com", "Host": "chat.example.com"}
    raw = await service.http.ws_connect("/ws", headers={**service.headers(), **direct})
    await raw.close()
    await expect_problem(
        await upgrade(service, Origin="https://chat.example.com:8443", Host="chat.example.com"),
        403,
        "origin_not_allowed",
    )


# Dev sign-in: loopback names only, same origin only


async def dev_token(service: Service, **headers: str) -> aiohttp.ClientResponse:
    return await service.http.post("/auth/dev-token", json={"user": "alice"}, headers=headers)


async def test_dev_sign_in_refuses_dns_rebinding_and_foreign_pages(
    env: dict[str, str], fake: FakeAnthropic
) -> None:
    del env["JWT_SECRET"]
    async with running(env, fake) as service:
        port = service.http.server.port
        rebound = f"evil.example:{port}"  # the attacker's name, re-pointed at 127.0.0.1
        refused = await dev_token(service, Host=rebound, Origin=f"http://{rebound}")
        await expect_problem(refused, 403, "host_not_allowed")
        await expect_problem(await dev_token(service, Host=rebound), 403, "host_not_allowed")
        foreign = await dev_token(service, Host=f"localhost:{port}", Origin="http://evil.example")
        await expect_problem(foreign, 403, "origin_not_allowed")

        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
            for origin in (None, f"http://{host}"):
                headers = {"Host": host} | ({"Origin": origin} if origin else {})
                response = await dev_token(service, **headers)
                assert response.status == 200, (headers, await response.text())


# Headers on every response


async def test_every_response_carries_the_security_headers(service: Service) -> None:
    checks = [
        ("GET", "/", 200),
        ("GET", "/healthz", 200),
        ("GET", "/static/app.js", 200),
        ("GET", "/api/me", 401),
        ("GET", "/nowhere", 404),
        ("DELETE", "/healthz", 405),
    ]
    for method, path, status in checks:
        response = await service.http.request(method, path)
        assert response.status == status, (path, await response.text())
        headers = response.headers
        assert headers["Server"] == "chat-service", path
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "base-uri 'none'" in policy, path
        assert "unsafe" not in policy
    page = await service.http.get("/", headers={"Host": "chat.example.com"})
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self' 'sha256-" in policy and "object-src 'none'" in policy
    assert "connect-src 'self' ws://chat.example.com wss://chat.example.com;" in policy
    ws = await service.http.ws_connect("/ws", headers=service.headers())
    assert ws._response.headers["Server"] == "chat-service"
    await ws.close()


# Oversized headers: refused before our handlers run, without echoing them


async def raw_exchange(host: str, port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status_line, {k.lower(): v for k, v in headers.items()}, body


def oversized_request(token: str) -> bytes:
    return (
        f"GET /api/me HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


SECRET_LOOKING = "SeCrEtToKeN" * 1000  # 11000 bytes: over aiohttp's 8190-byte line limit


def assert_refused_without_echo(status_line: str, headers: dict[str, str], body: bytes) -> None:
    assert status_line.startswith("HTTP/1.1 431") or status_line.startswith("HTTP/1.0 431")
    assert headers["content-type"].startswith("application/problem+json")
    assert headers["server"] == "chat-service"
    assert headers["x-content-type-options"] == "nosniff"
    problem = json.loads(body)
    assert (problem["status"], problem["code"]) == (431, "header_too_large")
    assert "SeCrEt" not in body.decode()


async def test_an_oversized_authorization_header_is_a_problem_that_echoes_nothing(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = service.http.server
    assert_refused_without_echo(
        *await raw_exchange(server.host, server.port, oversized_request(SECRET_LOOKING))
    )
    garbled = await raw_exchange(server.host, server.port, b"GET /\x00 SeCrEt\r\n\r\n")
    assert garbled[0].split()[1] == "400" and json.loads(garbled[2])["code"] == "bad_request"
    assert "SeCrEt" not in garbled[2].decode()
    assert "SeCrEt" not in caplog.text
    assert "refused an unparseable request" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert (await service.http.get("/healthz")).status == 200


async def test_python_m_server_refuses_an_oversized_header_the_same_way(
    env: dict[str, str], tmp_path: Path
) -> None:
    log_path = tmp_path / "server.log"
    process = ServerProcess({**env, "PORT": str(free_port()), "PATH": "/usr/bin:/bin"}, log_path)
    async with aiohttp.ClientSession() as session:
        await process.start(session)
        try:
            port = int(process.base_url.rsplit(":", 1)[1])
            exchange = await raw_exchange("127.0.0.1", port, oversized_request(SECRET_LOOKING))
            assert_refused_without_echo(*exchange)
            async with session.get(f"{process.base_url}/healthz") as response:
                assert response.headers["Server"] == "chat-service"
        finally:
            await process.stop()
    log = log_path.read_text()
    assert "refused an unparseable request" in log
    assert "SeCrEt" not in log and "ERROR" not in log


# No token or key in an answer or a log line


def leaky_tokens(marker: str) -> list[str]:
    """Bad tokens that carry `marker` where an error message might quote it."""
    now = 2_000_000_000
    return [
        marker,
        f"{marker}.{marker}.{marker}",
        jwt.encode({"sub": marker, "exp": 1}, JWT_SECRET, "HS256"),  # expired
        jwt.encode({"sub": marker, "exp": now + 9, "nbf": now}, JWT_SECRET, "HS256"),  # not yet
        jwt.encode({"sub": "a", "exp": now}, marker * 4, "HS256"),  # other secret
        jwt.encode({"sub": "a", "exp": now}, marker * 4, "HS256", headers={"kid": marker}),
        make_token()[:-4] + marker,
    ]


async def test_bad_tokens_and_the_api_key_never_reach_an_answer_or_a_log(
    service: Service, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    marker = "LeAkMaRkEr"
    api_key = "sk-ant-LeAkMaRkEr-key"
    await service.reconfigure(ANTHROPIC_API_KEY=api_key)
    seen: list[str] = []
    for token in leaky_tokens(marker):
        response = await service.http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        seen.append(json.dumps(await expect_problem(response, 401, "unauthorized")))
        seen.append(str(response.headers))
        raw = await service.http.ws_connect("/ws")
        await raw.send_json({"type": "auth", "token": token})
        seen.append(json.dumps(await raw.receive_json()))
        await raw.close()
    # The provider refuses the key: the error says so without quoting the key or its body.
    fake.script(
        Reply.http_error(401, error_type="authentication_error", message=f"bad key {api_key}")
    )
    ws = await service.ws()
    frames = await ws.turn("Hello")
    assert frames[-1]["type"] == "turn.error"
    seen.append(json.dumps(frames))
    await ws.close()
    assert api_key in str(fake.requests[-1].headers)  # it was really sent, and refused
    everything = "\n".join(seen)
    assert marker not in everything, everything
    assert "Traceback" not in everything
    assert marker not in caplog.text
    assert "Traceback" not in caplog.text


# Files: the service user's alone


def modes_in(folder: Path) -> dict[str, str]:
    """The permission bits of a folder and of each file under it, in octal; folders inside
    by their path, ending in `/`."""
    modes = {
        (f"{path.relative_to(folder)}/" if path.is_dir() else str(path.relative_to(folder))): oct(
            stat.S_IMODE(path.stat().st_mode)
        )
        for path in folder.rglob("*")
    }
    return modes | {".": oct(stat.S_IMODE(folder.stat().st_mode))}


async def test_the_database_files_and_the_dev_secret_are_private(
    env: dict[str, str], fake: FakeAnthropic
) -> None:
    del env["JWT_SECRET"], env["MONGODB_URI"]
    data_dir = Path(env["DATA_DIR"])
    async with running(env, fake) as service:
        response = await service.http.post("/auth/dev-token", json={"user": "alice"})
        token = (await response.json())["token"]
        raw = await service.http.ws_connect("/ws", headers={"Authorization": f"Bearer {token}"})
        assert (await raw.receive_json())["type"] == "ready"
        await raw.close()
        modes = modes_in(data_dir)
    assert {"chat.sqlite3", "chat.sqlite3.lock", "dev-jwt-secret"} <= modes.keys(), modes
    # The cancels' ending journal (server/turns/journal.py): people's answers too.
    journals = [name for name in modes if name.startswith("endings/") and name != "endings/"]
    assert len(journals) == 1, modes
    assert modes.pop(".") == modes.pop("endings/") == oct(0o700)
    assert set(modes.values()) == {oct(0o600)}, modes
