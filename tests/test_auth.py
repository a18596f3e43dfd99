"""Who may call the API: bearer JWTs (HS256 secret, RS256 public key), tenants, dev sign-in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.api_client import expect_problem
from tests.conftest import JWT_SECRET, Service, make_token
from tests.fake_anthropic import FakeAnthropic


@asynccontextmanager
async def running(env: dict[str, str], fake: FakeAnthropic) -> AsyncIterator[Service]:
    """A service built from `env` as the test changed it."""
    service = Service(env, fake)
    await service.start()
    try:
        yield service
    finally:
        await service.close()


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 600, **extra}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def hmac_by_hand(payload: dict[str, Any], key: bytes, alg: str = "HS256") -> str:
    """An HMAC-signed token made with any bytes, even ones PyJWT refuses to use as a secret."""
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(payload).encode())
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    signature = hmac.new(key, f"{header}.{body}".encode(), digest).digest()
    return f"{header}.{body}.{b64url(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def me(service: Service, headers: dict[str, str]) -> dict[str, Any]:
    response = await service.http.get("/api/me", headers=headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def refused(service: Service, headers: dict[str, str], path: str = "/api/me") -> None:
    response = await service.http.get(path, headers=headers)
    await expect_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# HS256 with JWT_SECRET


def _valid_token_with_a_forged_signature() -> str:
    header, body, _ = make_token().split(".")
    return f"{header}.{body}.{b64url(b'x' * 32)}"


BAD_HEADERS = {
    "no-header": {},
    "bearer-alone": {"Authorization": "Bearer"},
    "bearer-blank": {"Authorization": "Bearer    "},
    "basic": {"Authorization": "Basic YWxpY2U6cGFzcw=="},
    "token-without-scheme": {"Authorization": make_token()},
    "garbage": bearer("garbage"),
    "three-garbage-parts": bearer("abc.def.ghi"),
    "forged-signature": bearer(_valid_token_with_a_forged_signature()),
    "expired": bearer(make_token(ttl=-300)),
    "alg-none": bearer(jwt.encode(claims(), None, algorithm="none")),
    "other-secret": bearer(jwt.encode(claims(), "some-other-secret-32-bytes-long!!", "HS256")),
    "hs512-same-secret": bearer(hmac_by_hand(claims(), JWT_SECRET.encode(), "HS512")),
    "no-sub": bearer(jwt.encode({"exp": int(time.time()) + 600}, JWT_SECRET, "HS256")),
    "empty-sub": bearer(jwt.encode(claims(sub=""), JWT_SECRET, "HS256")),
    "no-exp": bearer(jwt.encode({"sub": "alice"}, JWT_SECRET, "HS256")),
    "tenant-not-a-string": bearer(jwt.encode(claims(tenant_id=7), JWT_SECRET, "HS256")),
}


async def test_a_bad_or_missing_token_is_401(service: Service, subtests: pytest.Subtests) -> None:
    for case, headers in BAD_HEADERS.items():
        with subtests.test(case):
            await refused(service, headers)
            create = await service.http.post("/api/conversations", json={}, headers=headers)
            await expect_problem(create, 401, "unauthorized")
    assert await service.db.conversations.count_documents({}) == 0


async def test_a_good_token_is_accepted_whatever_the_case_of_its_scheme(service: Service) -> None:
    assert await me(service, bearer(make_token("alice"))) == {
        "user_id": "alice",
        "tenant_id": "default",
    }
    assert await me(service, {"Authorization": f"bearer {make_token('bob')}"}) == {
        "user_id": "bob",
        "tenant_id": "default",
    }


async def test_the_tenant_comes_from_the_tenant_id_claim(service: Service) -> None:
    assert await me(service, service.headers("alice", "acme")) == {
        "user_id": "alice",
        "tenant_id": "acme",
    }


async def test_a_configured_tenant_claim_is_the_one_read(
    env: dict[str, str], fake: FakeAnthropic
) -> None:
    env["JWT_TENANT_CLAIM"] = "org"
    async with running(env, fake) as service:
        org_token = jwt.encode(claims(org="acme", tenant_id="ignored"), JWT_SECRET, "HS256")
        assert (await me(service, bearer(org_token)))["tenant_id"] == "acme"
        assert (await me(service, service.headers("alice", "ignored")))["tenant_id"] == "default"

        created = await service.http.post(
            "/api/conversations", json={"title": "Acme's"}, headers=bearer(org_token)
        )
        assert created.status == 201
        stored = await service.db.conversations.find_one({"_id": (await created.json())["id"]})
        assert stored["tenant_id"] == "acme"
        other_org = jwt.encode(claims(org="globex"), JWT_SECRET, "HS256")
        listed = await service.http.get("/api/conversations", headers=bearer(other_org))
        assert (await listed.json())["items"] == []


async def test_issuer_and_audience_are_checked_when_set(
    env: dict[str, str], fake: FakeAnthropic
) -> None:
    env["JWT_ISSUER"] = "https://issuer.test"
    env["JWT_AUDIENCE"] = "chat-api"
    async with running(env, fake) as service:
        good = claims(iss="https://issuer.test", aud="chat-api", tenant_id="acme")
        assert await me(service, bearer(jwt.encode(good, JWT_SECRET, "HS256"))) == {
            "user_id": "alice",
            "tenant_id": "acme",
        }
        for wrong in (
            {"iss": "https://evil.test"},
            {"aud": "another-api"},
            {"aud": ["another-api", "more"]},
        ):
            token = jwt.encode({**good, **wrong}, JWT_SECRET, "HS256")
            await refused(service, bearer(token))
        for missing in ("iss", "aud"):
            payload = {k: v for k, v in good.items() if k != missing}
            await refused(service, bearer(jwt.encode(payload, JWT_SECRET, "HS256")))


# RS256 with JWT_PUBLIC_KEY_FILE


@pytest.fixture
def rsa_key(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "jwt-public.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, path


async def test_rs256_tokens_verify_with_the_public_key_and_nothing_else_does(
    env: dict[str, str], fake: FakeAnthropic, rsa_key: tuple[rsa.RSAPrivateKey, Path]
) -> None:
    private_key, public_path = rsa_key
    del env["JWT_SECRET"]
    env["JWT_PUBLIC_KEY_FILE"] = str(public_path)
    async with running(env, fake) as service:
        good = jwt.encode(claims(tenant_id="acme"), private_key, algorithm="RS256")
        assert await me(service, bearer(good)) == {"user_id": "alice", "tenant_id": "acme"}

        # The algorithm-confusion attack: HS256 with the public key's PEM as the secret.
        await refused(service, bearer(hmac_by_hand(claims(), public_path.read_bytes())))
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        await refused(service, bearer(jwt.encode(claims(), stranger, algorithm="RS256")))
        await refused(service, bearer(jwt.encode(claims(), None, algorithm="none")))
        await refused(service, bearer(make_token()))  # HS256 with the test secret
        await refused(service, bearer(jwt.encode({"sub": "alice"}, private_key, "RS256")))

        dev = await service.http.post("/auth/dev-token", json={"user": "alice"})
        await expect_problem(dev, 404, "not_found")


async def test_a_token_for_the_other_asymmetric_algorithm_is_401_not_500(
    env: dict[str, str], fake: FakeAnthropic, rsa_key: tuple[rsa.RSAPrivateKey, Path]
) -> None:
    """ES256 is allowed with a public key, but this key is RSA: PyJWT's key error is a 401."""
    del env["JWT_SECRET"]
    env["JWT_PUBLIC_KEY_FILE"] = str(rsa_key[1])
    async with running(env, fake) as service:
        ec_key = ec.generate_private_key(ec.SECP256R1())
        await refused(service, bearer(jwt.encode(claims(), ec_key, algorithm="ES256")))


# Dev sign-in: no JWT setting, loopback only


@pytest.fixture
def dev_env(env: dict[str, str]) -> dict[str, str]:
    del env["JWT_SECRET"]
    return env


async def test_dev_sign_in_issues_tokens_the_api_accepts_across_restarts(
    dev_env: dict[str, str], fake: FakeAnthropic
) -> None:
    async with running(dev_env, fake) as service:
        response = await service.http.post(
            "/auth/dev-token", json={"user": "alice", "tenant": "t1"}
        )
        assert response.status == 200
        issued = await response.json()
        assert (issued["user_id"], issued["tenant_id"]) == ("alice", "t1")
        assert await me(service, bearer(issued["token"])) == {"user_id": "alice", "tenant_id": "t1"}

        plain = await service.http.post("/auth/dev-token", json={"user": "bob"})
        assert (await plain.json())["tenant_id"] == "default"
        assert await me(service, bearer((await plain.json())["token"])) == {
            "user_id": "bob",
            "tenant_id": "default",
        }
        # Not the test secret: the dev secret is random, kept in DATA_DIR.
        await refused(service, service.headers("alice"))
        secret_file = Path(dev_env["DATA_DIR"]) / "dev-jwt-secret"
        assert len(secret_file.read_text()) >= 32
        assert secret_file.stat().st_mode & 0o077 == 0

        await service.restart()
        assert await me(service, bearer(issued["token"])) == {"user_id": "alice", "tenant_id": "t1"}


BAD_DEV_TOKEN_REQUESTS = [
    (b'{"user": ', 400, "malformed_json"),
    (b"{}", 422, "validation_error"),
    (b'{"user": ""}', 422, "validation_error"),
    (b'{"user": "al ice"}', 422, "validation_error"),
    (b'{"user": "alice", "admin": true}', 422, "validation_error"),
    (b'{"user": 5}', 422, "validation_error"),
]


async def test_a_bad_dev_token_request_is_refused(
    dev_env: dict[str, str], fake: FakeAnthropic, subtests: pytest.Subtests
) -> None:
    async with running(dev_env, fake) as service:
        for body, status, code in BAD_DEV_TOKEN_REQUESTS:
            with subtests.test(body.decode()):
                response = await service.http.post("/auth/dev-token", data=body)
                await expect_problem(response, status, code)


async def test_dev_sign_in_is_not_served_when_a_jwt_secret_is_set(service: Service) -> None:
    response = await service.http.post("/auth/dev-token", json={"user": "alice"})
    await expect_problem(response, 404, "not_found")
    assert not (Path(service.env["DATA_DIR"]) / "dev-jwt-secret").exists()


async def test_jwks_url_keys_verify_tokens_by_kid(
    env: dict[str, str], fake: FakeAnthropic, rsa_key: tuple[rsa.RSAPrivateKey, Path]
) -> None:
    """A real JWKS endpoint on loopback; the service fetches it off its event loop."""
    private_key, _ = rsa_key
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    jwks = {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}
    fetched: list[str] = []

    async def serve_jwks(request: web.Request) -> web.Response:
        fetched.append(request.path)
        return web.json_response(jwks)

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", serve_jwks)
    async with TestServer(app) as keys:
        del env["JWT_SECRET"]
        env["JWT_JWKS_URL"] = str(keys.make_url("/.well-known/jwks.json"))
        async with running(env, fake) as service:
            good = jwt.encode(claims(), private_key, algorithm="RS256", headers={"kid": "k1"})
            assert await me(service, bearer(good)) == {"user_id": "alice", "tenant_id": "default"}
            assert await me(service, bearer(good)) == {"user_id": "alice", "tenant_id": "default"}
            assert len(fetched) == 1, "keys are cached, not fetched per request"

            stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            forged = jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": "k1"})
            await refused(service, bearer(forged))
            unknown_kid = jwt.encode(
                claims(), private_key, algorithm="RS256", headers={"kid": "k9"}
            )
            await refused(service, bearer(unknown_kid))
            await refused(service, bearer(make_token()))
