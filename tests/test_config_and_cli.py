"""Start-up: settings that stop the process with one clear line, and `python -m server`."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from server.__main__ import main
from server.config import load_settings
from server.startup_errors import ConfigError
from tests.conftest import Service
from tests.live_server import free_port, run_cli, server_env, spawn

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


# load_settings


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PORT": "-1"}, "PORT"),
        ({"JWT_SECRET": "s", "JWT_PUBLIC_KEY_FILE": "/nonexistent/key.pem"}, "JWT_PUBLIC_KEY_FILE"),
        ({"HOST": "0.0.0.0"}, "HOST"),
        ({"HOST": "192.0.2.10"}, "HOST"),
        ({"HOST": "example.com"}, "HOST"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"CHAT_MODELS": " , "}, "CHAT_MODELS"),
        ({"ON_DISCONNECT": "explode"}, "ON_DISCONNECT"),
        ({"CHECKPOINT_INTERVAL_SECONDS": "soon"}, "CHECKPOINT_INTERVAL_SECONDS"),
        ({"TRUSTED_PROXIES": "10.0.0.1, nginx"}, "TRUSTED_PROXIES"),
        ({"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"),
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),
        ({"WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
    ],
)
def test_a_bad_setting_is_a_config_error_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert str(raised.value).startswith(named), str(raised.value)


def test_a_bad_redis_url_is_refused_without_repeating_its_password() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"REDIS_URL": "http://:hunter2@cache:6379/0"})
    assert str(raised.value).startswith("REDIS_URL") and "hunter2" not in str(raised.value)


def test_the_host_flag_is_checked_like_the_environment() -> None:
    with pytest.raises(ConfigError, match=r"HOST=0\.0\.0\.0"):
        load_settings({"HOST": "127.0.0.1"}, host="0.0.0.0")
    assert load_settings({"JWT_SECRET": "s"}, host="0.0.0.0").host == "0.0.0.0"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_without_a_jwt_setting_is_dev_sign_in(host: str) -> None:
    settings = load_settings({"HOST": host})
    assert settings.dev_signin and not settings.jwt_configured


def test_a_public_address_with_a_jwt_setting_starts_without_dev_sign_in(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\n")
    for env in (
        {"JWT_SECRET": "s"},
        {"JWT_PUBLIC_KEY_FILE": str(key)},
        {"JWT_JWKS_URL": "https://x"},
    ):
        settings = load_settings({"HOST": "0.0.0.0", "PORT": "9000", **env})
        assert (settings.host, settings.port) == ("0.0.0.0", 9000)
        assert settings.jwt_configured and not settings.dev_signin


def test_defaults_follow_the_design() -> None:
    settings = load_settings({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.data_dir == Path("data")
    assert settings.mongodb_uri is None
    assert settings.jwt_tenant_claim == "tenant_id"
    assert settings.offline and settings.models == ("offline",)
    online = load_settings({"ANTHROPIC_API_KEY": "k", "CHAT_MODELS": "a, b", "CHAT_MODEL": "c"})
    assert online.models == ("c", "a", "b") and online.default_model == "c"


# python -m server, as a process


async def test_a_public_host_without_a_jwt_setting_exits_with_one_clear_line(
    tmp_path: Path,
) -> None:
    code, out, err = await run_cli(
        "--host", "0.0.0.0", env=server_env(DATA_DIR=str(tmp_path / "data"))
    )
    assert code != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "HOST=0.0.0.0" in lines[0] and "JWT_SECRET" in lines[0]
    assert not (tmp_path / "data").exists(), "nothing is started or written"


def test_a_bad_port_flag_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "http"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == ["configuration error: --port='http': not an integer"]


@pytest.mark.parametrize("argv", [["--prot", "8092"], ["token", "--user", "a", "--tll=5"]])
def test_an_unknown_flag_is_named(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """Not "invalid choice: '8092'": argparse would read the flag's value as a command."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    flag = argv[-2] if argv[-1].isdigit() else argv[-1].split("=")[0]
    assert f"error: unknown option {flag} (see --help)" in capsys.readouterr().err


async def test_the_token_command_prints_a_token_the_service_accepts(
    service: Service, tmp_path: Path
) -> None:
    env = server_env(DATA_DIR=str(tmp_path / "cli"), **_jwt_env(service))
    code, out, err = await run_cli("token", "--user", "alice", "--tenant", "t1", env=env)
    assert code == 0, err
    token = out.strip()
    assert token.count(".") == 2 and "\n" not in token
    response = await service.http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    assert await response.json() == {"user_id": "alice", "tenant_id": "t1"}


def test_the_token_command_refuses_when_only_a_public_key_is_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.setenv("JWT_PUBLIC_KEY_FILE", str(key))
    assert main(["token", "--user", "alice"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and "JWT_SECRET" in captured.err


def _jwt_env(service: Service) -> dict[str, str]:
    return {k: v for k, v in service.env.items() if k.startswith("JWT_")}


async def test_json_logs_have_one_access_line_per_request(tmp_path: Path) -> None:
    port = free_port()
    env = server_env(
        PORT=str(port),
        DATA_DIR=str(tmp_path / "data"),
        LOG_FORMAT="json",
        JWT_SECRET="cli-test-secret-long-enough-for-hs256",
    )
    process = await spawn(env=env)
    try:
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        assert f":{port}/" in banner.decode(), banner
        token = jwt.encode(
            {"sub": "alice", "tenant_id": "t1", "exp": int(time.time()) + 600},
            env["JWT_SECRET"],
            algorithm="HS256",
        )
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            async with http.get("/healthz") as health:
                assert health.status == 200
            headers = {"Authorization": f"Bearer {token}"}
            async with http.get("/api/me", headers=headers) as me:
                assert me.status == 200
            async with http.get("/api/conversations/nope", headers=headers) as missing:
                assert missing.status == 404
    finally:
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    assert process.returncode == 0, err.decode()[-2000:]

    records = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    access = [r for r in records if r.get("name") == "aiohttp.access"]
    assert [(r["method"], r["path"], r["status"], r["user"]) for r in access] == [
        ("GET", "/healthz", 200, "-"),
        ("GET", "/api/me", 200, "t1/alice"),
        ("GET", "/api/conversations/nope", 404, "t1/alice"),
    ]
    assert all(isinstance(r["duration_ms"], int | float) and r["duration_ms"] >= 0 for r in access)
    assert all(r["remote"] == "127.0.0.1" for r in access)
    assert all({"levelname", "message"} <= r.keys() for r in records)
