"""Start-up failures an operator can act on: one line naming the cause and the fix, exit 2.

Each test runs the real `python -m server` and reads what a person at the
terminal would see: no traceback, nothing on stdout, one line on stderr.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from tests.live_server import free_port, run_cli, server_env, spawn

START_TIMEOUT = 30.0


def one_line(code: int, out: str, err: str) -> str:
    """The single stderr line of a refused start-up."""
    assert code == 2, err
    assert "Traceback" not in err, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


async def test_a_port_in_use_names_the_address_and_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await run_cli(env=server_env(PORT=str(port), DATA_DIR=str(tmp_path / "data")))
    line = one_line(*result)
    assert f"127.0.0.1:{port} is already in use" in line
    assert "PORT" in line and "--port" in line
    assert not (tmp_path / "data").exists(), "refused before the database started"


async def test_a_data_dir_in_use_names_the_running_instance_at_once(tmp_path: Path) -> None:
    env = server_env(DATA_DIR=str(tmp_path / "data"))
    first = await spawn(env={**env, "PORT": str(free_port())})
    try:
        assert first.stdout is not None
        banner = await asyncio.wait_for(first.stdout.readline(), START_TIMEOUT)
        assert b"chat service on" in banner

        # At once: run_cli's 20 s limit is far below the embedded database's 60 s wait.
        result = await run_cli(env={**env, "PORT": str(free_port())})
    finally:
        first.terminate()
        await asyncio.wait_for(first.communicate(), START_TIMEOUT)
    line = one_line(*result)
    assert f"{tmp_path / 'data'} is in use by another running instance" in line
    assert f"pid {first.pid}" in line and "DATA_DIR" in line

    # Once the holder has stopped, the directory is free again.
    port = free_port()
    again = await spawn(env={**env, "PORT": str(port)})
    try:
        assert again.stdout is not None
        banner = await asyncio.wait_for(again.stdout.readline(), START_TIMEOUT)
        assert f":{port}/" in banner.decode()
    finally:
        again.terminate()
        await asyncio.wait_for(again.communicate(), START_TIMEOUT)


def _private_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"not a key\n", "is not a PEM public key"),
        (b"-----BEGIN PUBLIC KEY-----\n", "is not a PEM public key"),
        (_private_key_pem(), "is not a PEM public key"),
        (b"\xff\xfe\x00binary", "cannot read"),
    ],
    ids=["text", "truncated", "private-key", "binary"],
)
async def test_an_unusable_public_key_file_is_one_line(
    tmp_path: Path, content: bytes, says: str
) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(content)
    env = server_env(
        JWT_PUBLIC_KEY_FILE=str(key), PORT=str(free_port()), DATA_DIR=str(tmp_path / "data")
    )
    line = one_line(*await run_cli(env=env))
    assert line.startswith("configuration error: JWT_PUBLIC_KEY_FILE:"), line
    assert str(key) in line and says in line


async def test_an_unreachable_mongodb_is_one_line_within_seconds(tmp_path: Path) -> None:
    nobody = free_port()  # bound and released: nothing listens there
    env = server_env(
        MONGODB_URI=f"mongodb://127.0.0.1:{nobody}/chat",
        PORT=str(free_port()),
        DATA_DIR=str(tmp_path / "data"),
    )
    # Start-up gives up after 5 s, not the driver's 10 s server selection.
    line = one_line(*await run_cli(env=env))
    assert line.startswith("cannot start: MONGODB_URI: no answer within 5 s"), line
    assert f"127.0.0.1:{nobody}" in line


async def test_a_malformed_mongodb_uri_is_one_line(tmp_path: Path) -> None:
    env = server_env(
        MONGODB_URI="mongodb://user:p@ss:word@db/chat",
        PORT=str(free_port()),
        DATA_DIR=str(tmp_path / "data"),
    )
    line = one_line(*await run_cli(env=env))
    assert line.startswith("cannot start: MONGODB_URI: "), line
    assert "p@ss" not in line, "the password is not repeated"


async def test_a_uri_that_is_not_a_mongodb_uri_is_told_at_once(tmp_path: Path) -> None:
    """The driver would read `notauri` as a host and look for it for seconds."""
    env = server_env(MONGODB_URI="notauri", PORT=str(free_port()), DATA_DIR=str(tmp_path / "d"))
    line = one_line(*await run_cli(env=env, timeout=5))
    assert line.startswith("configuration error: MONGODB_URI: not a MongoDB URI"), line
    assert "mongodb://" in line


@pytest.mark.parametrize("where", ["/proc/nope", "a-file"])
async def test_a_data_dir_that_cannot_be_made_is_one_line(tmp_path: Path, where: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    data_dir = where if where.startswith("/") else str(tmp_path / where / "data")
    env = server_env(DATA_DIR=data_dir, PORT=str(free_port()))
    line = one_line(*await run_cli(env=env))
    assert line.startswith(f"configuration error: DATA_DIR={data_dir}: cannot be created ("), line
    assert "set DATA_DIR to a folder this user can write" in line


async def test_workers_that_cannot_start_are_one_line_from_the_supervisor(tmp_path: Path) -> None:
    nobody = free_port()
    env = server_env(
        WEB_CONCURRENCY="2",
        MONGODB_URI=f"mongodb://127.0.0.1:{nobody}/chat",
        PORT=str(free_port()),
        DATA_DIR=str(tmp_path / "data"),
    )
    # Both workers fail alike; the supervisor says it once and exits 2.
    line = one_line(*await run_cli(env=env))
    assert line.startswith("cannot start: MONGODB_URI: no answer within 5 s"), line


async def test_workers_share_a_port_in_use_check_and_port_0(tmp_path: Path) -> None:
    env = server_env(WEB_CONCURRENCY="2", PORT="0", DATA_DIR=str(tmp_path / "data"))
    first = await spawn(env=env)
    try:
        assert first.stdout is not None
        banner = (await asyncio.wait_for(first.stdout.readline(), START_TIMEOUT)).decode()
        assert banner.startswith("chat service on http://127.0.0.1:") and "(2 workers)" in banner
        port = int(banner.split(":")[2].split("/")[0])
        assert port != 0
        again = server_env(WEB_CONCURRENCY="2", PORT=str(port), DATA_DIR=str(tmp_path / "other"))
        line = one_line(*await run_cli(env=again))
        assert line == (
            f"cannot start: 127.0.0.1:{port} is already in use (another instance?); "
            "stop that process or choose another port with PORT=... or --port ..."
        )
    finally:
        first.terminate()
        assert await asyncio.wait_for(first.wait(), START_TIMEOUT) == 0
