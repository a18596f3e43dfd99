"""What a scenario needs to know about the service it measures.

Kept apart from the harness that starts the service, so the smoke test can
point a scenario at an in-process test server instead of a subprocess.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

from tests.fake_anthropic import FakeAnthropic

TOKEN_TTL_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Target:
    base_url: str  # http://127.0.0.1:PORT, no trailing slash
    jwt_secret: str  # the HS256 secret the service was started with
    fake: FakeAnthropic  # the upstream it streams from
    pid: int  # the process whose memory is reported

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def auth(self, user: str) -> dict[str, str]:
        """An Authorization header for `user`, minted as any identity provider would."""
        now = int(time.time())
        claims = {"sub": user, "iat": now, "exp": now + TOKEN_TTL_SECONDS}
        return {"Authorization": f"Bearer {jwt.encode(claims, self.jwt_secret, algorithm='HS256')}"}

    def cpu_seconds(self) -> float | None:
        """User plus system CPU time of the service process, all threads (Linux)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int | None:
        """Resident memory of the service process (Linux), None where /proc is missing."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None


def fresh_user(scenario: str) -> str:
    """A user of its own per scenario run, so no scenario sees another's conversations."""
    return f"bench-{scenario}-{uuid.uuid4().hex[:8]}"
