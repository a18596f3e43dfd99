"""What a workload needs to know about the service it measures and the upstream behind it.

Kept apart from the code that starts them, so the smoke test can point a
workload at an in-process service and fake instead of subprocesses.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

TOKEN_TTL_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Target:
    base_url: str  # the service: http://127.0.0.1:PORT, no trailing slash
    jwt_secret: str  # the HS256 secret the service was started with
    upstream_url: str  # the stamping fake Anthropic API, also read directly as the baseline
    pid: int  # the service process (CPU, memory)
    database_uri: str | None = None  # for serverStatus opcounters (DB writes)
    database_pid: int | None = None  # the embedded database's process, when known
    upstream_pid: int | None = None
    worker_pids: tuple[int, ...] = ()  # WEB_CONCURRENCY > 1: `pid` is their supervisor

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/ws"

    def auth(self, user: str, tenant: str | None = None) -> dict[str, str]:
        """An Authorization header for `user`, minted as any identity provider would."""
        now = int(time.time())
        claims: dict[str, object] = {"sub": user, "iat": now, "exp": now + TOKEN_TTL_SECONDS}
        if tenant is not None:
            claims["tenant_id"] = tenant  # the service's default JWT_TENANT_CLAIM
        return {"Authorization": f"Bearer {jwt.encode(claims, self.jwt_secret, algorithm='HS256')}"}

    def processes(self) -> dict[str, int | None]:
        workers = {f"service worker {index}": pid for index, pid in enumerate(self.worker_pids, 1)}
        return {
            "service": self.pid,
            **workers,
            "database": self.database_pid,
            "upstream": self.upstream_pid,
        }


def fresh_user(workload: str) -> str:
    """A user of its own per client, so no workload sees another's conversations."""
    return f"bench-{workload}-{uuid.uuid4().hex[:8]}"
