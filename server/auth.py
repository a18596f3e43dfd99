"""JWT verification (PyJWT) and the local dev sign-in.

Keys and algorithms are fixed at start-up from the settings: an HS secret only
ever verifies HS256, a public key or JWKS only RS256/ES256, so a token cannot
choose its own algorithm (no `none`, no HS256 signed with a public key).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from server.config import Settings
from server.errors import Unauthorized
from server.identity import Identity
from server.startup_errors import ConfigError
from server.typedefs import identity_key

ASYMMETRIC_ALGORITHMS = ["RS256", "ES256"]
DEV_SECRET_FILE = "dev-jwt-secret"
MAX_TOKEN_BYTES = 8192


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)
            self._key, self._algorithms = None, ASYMMETRIC_ALGORITHMS
        elif settings.jwt_public_key_file:
            self._key = load_public_key(settings.jwt_public_key_file)
            self._algorithms = ASYMMETRIC_ALGORITHMS
        else:
            self._key = settings.jwt_secret or load_dev_secret(settings.data_dir)
            self._algorithms = ["HS256"]

    @property
    def can_sign(self) -> bool:
        """Tokens can be minted here only with a shared secret (configured or dev)."""
        return self._algorithms == ["HS256"]

    async def identify(self, token: str) -> Identity:
        """The caller behind `token`, or `Unauthorized` saying what was wrong."""
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise Unauthorized("Missing or oversized bearer token")
        key = self._key
        try:
            if self._jwks is not None:
                # PyJWKClient fetches with urllib (blocking): keep it off the event loop.
                key = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                leeway=self._settings.jwt_leeway_seconds,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self._settings.jwt_audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired") from None
        except jwt.InvalidTokenError as error:
            raise Unauthorized(f"Invalid token: {error}") from None
        except jwt.InvalidKeyError:
            # An allowed algorithm that does not fit the key (ES256 against an RSA key):
            # PyJWT calls that a key error, but it is the token that is wrong.
            raise Unauthorized("Invalid token: its algorithm does not fit the key") from None
        except jwt.PyJWKClientError as error:
            raise Unauthorized(f"Cannot verify token: {error}") from None
        user = claims.get("sub")
        tenant = claims.get(self._settings.jwt_tenant_claim, "default")
        if not isinstance(user, str) or not user or not isinstance(tenant, str) or not tenant:
            raise Unauthorized("The token's subject or tenant claim is not a non-empty string")
        return Identity(tenant_id=tenant, user_id=user)

    def issue(self, user: str, tenant: str | None = None, ttl_seconds: int = 12 * 3600) -> str:
        if not self.can_sign:
            raise RuntimeError("tokens can only be issued with an HS256 secret")
        issued = int(time.time())
        claims: dict[str, Any] = {"sub": user, "iat": issued, "exp": issued + ttl_seconds}
        if tenant:
            claims[self._settings.jwt_tenant_claim] = tenant
        if self._settings.jwt_issuer:
            claims["iss"] = self._settings.jwt_issuer
        if self._settings.jwt_audience:
            claims["aud"] = self._settings.jwt_audience
        return jwt.encode(claims, self._key, algorithm="HS256")


def load_public_key(path: Path) -> str:
    """The PEM text of the verification key, checked now rather than at the first request."""
    try:
        pem = path.read_text()
        serialization.load_pem_public_key(pem.encode())
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not text"
        raise ConfigError(f"JWT_PUBLIC_KEY_FILE: cannot read {path}: {reason}") from None
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            f"JWT_PUBLIC_KEY_FILE: {path} is not a PEM public key "
            "(expected '-----BEGIN PUBLIC KEY-----', RSA or EC)"
        ) from None
    return pem


def load_dev_secret(data_dir: Path) -> str:
    """A random secret kept in DATA_DIR, so dev tokens survive restarts.

    Written aside and linked into place: the file appears whole or not at all, and
    when several processes (WEB_CONCURRENCY workers) race, the first link wins and
    every one of them reads that secret."""
    path = data_dir / DEV_SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = data_dir / f".{DEV_SECRET_FILE}.{os.getpid()}"
    # Created 0600 in one step: never readable by others, not even between create and chmod.
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(48))
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process linked its secret first: that one is the secret
    finally:
        draft.unlink()
    return path.read_text().strip()


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def auth_middleware(
    authenticator: Callable[[web.Request], Authenticator],
    public: frozenset[str] = frozenset(),
    public_reads: tuple[str, ...] = (),
) -> Middleware:
    """Every /api route but the `public` paths, and GETs of paths under `public_reads`
    (share links), needs a bearer token; the identity lands in request[identity_key]."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        reading = request.method in {"GET", "HEAD"} and request.path.startswith(public_reads)
        if request.path in public or reading:
            return await handler(request)
        if request.path.startswith("/api/") or request.path == "/api":
            token = bearer_token(request)
            if token is None:
                raise Unauthorized("Send 'Authorization: Bearer <token>'")
            request[identity_key] = await authenticator(request).identify(token)
        return await handler(request)

    return middleware


def identity_of(request: web.Request) -> Identity:
    return request[identity_key]
