"""The checked-in nginx config (deploy/nginx.conf), run by Debian's real nginx in front of
the service: TLS, the WebSocket upgrade, and SSE events passed on as they come.

The site file is used as it is, with only its ports, certificate paths and
upstream address substituted; the test adds what any nginx needs around it
(pid file, logs, temp paths, `daemon off`).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import shutil
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from tests.conftest import WS, Service, new_turn_id, text_of
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.live_server import ROOT, free_port
from tests.sse_client import SseReader, sse_text

NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None
)
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (`.ci/run` installs Debian's nginx)"
)

SITE = ROOT / "deploy" / "nginx.conf"
START_TIMEOUT = 10.0


@dataclass
class Proxy:
    """nginx, running; `url` is its HTTPS side, `tls` trusts its certificate."""

    url: str
    plain_url: str
    tls: ssl.SSLContext


def render(template: str, replacements: dict[str, str]) -> str:
    """Substitute each line exactly once: a template that drifts fails here, loudly."""
    for old, new in replacements.items():
        assert template.count(old) == 1, f"{SITE.name} should contain {old!r} once"
        template = template.replace(old, new)
    return template


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(Encoding.PEM))
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return cert_path, key_path


def main_config(root: Path, site: Path) -> str:
    # As root, workers would drop to `nobody`, who cannot read the test's files.
    user = "user root;" if os.geteuid() == 0 else ""
    temp = " ".join(
        f"{kind}_temp_path {root / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
daemon off;
{user}
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} info;
events {{ worker_connections 64; }}
http {{
    access_log {root / "access.log"};
    {temp}
    include {site};
}}
"""


async def wait_listening(process: asyncio.subprocess.Process, port: int, log: Path) -> None:
    async with asyncio.timeout(START_TIMEOUT):
        while True:
            if process.returncode is not None:
                error_log = await asyncio.to_thread(log.read_text)
                raise AssertionError(f"nginx exited: {error_log[-2000:]}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return


def write_config(root: Path, https_port: int, http_port: int, upstream_port: int) -> Path:
    """nginx.conf in `root`, including the checked-in site with its local addresses."""
    cert, key = self_signed(root)
    site = root / "chat.conf"
    site.write_text(
        render(
            SITE.read_text(),
            {
                "listen 80;": f"listen 127.0.0.1:{http_port};",
                "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
                "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream_port};",
                "/etc/letsencrypt/live/chat.example.com/fullchain.pem": str(cert),
                "/etc/letsencrypt/live/chat.example.com/privkey.pem": str(key),
            },
        )
    )
    config = root / "nginx.conf"
    config.write_text(main_config(root, site))
    return config


@pytest.fixture
async def nginx(service: Service, tmp_path: Path) -> AsyncIterator[Proxy]:
    assert NGINX is not None
    root = tmp_path / "nginx"
    root.mkdir()
    https_port, http_port = free_port(), free_port()
    assert service.http.port is not None
    config = await asyncio.to_thread(write_config, root, https_port, http_port, service.http.port)
    log = root / "error.log"
    process = await asyncio.create_subprocess_exec(
        NGINX, "-p", str(root), "-c", str(config), "-e", str(log)
    )
    try:
        await wait_listening(process, https_port, log)
        tls = ssl.create_default_context(cafile=str(root / "cert.pem"))
        yield Proxy(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", tls)
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), START_TIMEOUT)


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
