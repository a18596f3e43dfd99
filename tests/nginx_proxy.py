"""Debian's real nginx running the checked-in site (deploy/nginx.conf) in front of the service.

The site file is used as it is, with only its ports, certificate paths and
upstream addresses substituted (and, for the tests of processes without
sticky sessions, its `hash` line taken out); around it goes what any nginx
needs (pid file, logs, temp paths, `daemon off`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import os
import shutil
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from tests.live_server import ROOT, free_port

NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None
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


def write_config(
    root: Path, https_port: int, http_port: int, upstream_ports: list[int], *, sticky: bool
) -> Path:
    """nginx.conf in `root`, including the checked-in site with its local addresses:
    one `server` line per upstream port; without `sticky`, nginx's plain round robin."""
    root.mkdir()
    cert, key = self_signed(root)
    site = root / "chat.conf"
    sticky_line = "hash $remote_addr consistent;"
    servers = "\n    ".join(f"server 127.0.0.1:{port};" for port in upstream_ports)
    site.write_text(
        render(
            SITE.read_text(),
            {
                "listen 80;": f"listen 127.0.0.1:{http_port};",
                "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
                sticky_line: sticky_line if sticky else "# round robin, no stickiness",
                "server 127.0.0.1:8080;": servers,
                "/etc/letsencrypt/live/chat.example.com/fullchain.pem": str(cert),
                "/etc/letsencrypt/live/chat.example.com/privkey.pem": str(key),
            },
        )
    )
    config = root / "nginx.conf"
    config.write_text(main_config(root, site))
    return config


@contextlib.asynccontextmanager
async def running_nginx(
    root: Path, upstream_ports: list[int], *, sticky: bool = True
) -> AsyncIterator[Proxy]:
    """Debian's nginx running the checked-in site in front of `upstream_ports`, until the end."""
    assert NGINX is not None
    https_port, http_port = free_port(), free_port()
    config = await asyncio.to_thread(
        write_config, root, https_port, http_port, upstream_ports, sticky=sticky
    )
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
