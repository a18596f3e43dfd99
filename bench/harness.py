"""Start the service as an operator would, against the fake upstream, and stop it.

`python -m server` runs in its own process so that its event loop, memory
and CPU are its own: the numbers are the service's, not the client's. The
fake Anthropic server runs on a thread here, so cancel scenarios can read
when it saw its connection close.

Each scenario gets a fresh service and database: with the embedded database
a turn costs more the more was written before it, so a shared one would make
every number depend on which scenarios ran first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from pymongo import AsyncMongoClient

from bench.target import Target
from tests.fake_anthropic import FakeAnthropic

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
READY_POLL_SECONDS = 0.1
PROBLEM_SAMPLES = 8
TRACEBACK_LINES = 60

# What every bench service runs with, besides its port, data dir and upstream.
# The per-connection flood guard (20 frames/s, burst 40) is raised: it would
# answer a client that starts turns back to back with `flooding`, and the
# bench measures the service's pace, not the guard's.
BENCH_ENV = {
    "HOST": "127.0.0.1",
    "ANTHROPIC_API_KEY": "bench",
    "UPSTREAM_MAX_RETRIES": "0",
    "WS_FRAMES_PER_SECOND": "1000",
    "WS_FRAME_BURST": "1000",
}


@dataclass
class RunningService:
    target: Target
    ready_s: float = 0.0  # from spawn to /readyz answering 200
    stop_s: float = 0.0  # from SIGTERM to exit
    server_log: dict[str, Any] = field(default_factory=dict)  # filled in once it has stopped


@contextlib.contextmanager
def fake_upstream() -> Iterator[FakeAnthropic]:
    """The fake Anthropic API on a thread of its own, for the whole run."""
    fake = FakeAnthropic()
    with fake.running_in_thread():
        yield fake


@contextlib.asynccontextmanager
async def running_service(fake: FakeAnthropic) -> AsyncIterator[RunningService]:
    """`python -m server` on a free port with a fresh database, ready to serve.

    The database is MONGODB_URI's server (in a database of its own, dropped
    afterwards) when set, else the embedded one in a temporary DATA_DIR.
    """
    external = os.environ.get("MONGODB_URI") or None
    database_uri = _with_database(external, f"bench_{uuid.uuid4().hex[:12]}") if external else None
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as tmp:
        env = _service_env(fake, Path(tmp) / "data", database_uri)
        log_path = Path(tmp) / "server.log"
        spawned = time.perf_counter()
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server", cwd=ROOT, env=env, stdout=log, stderr=log
            )
        target = Target(f"http://127.0.0.1:{env['PORT']}", env["JWT_SECRET"], fake, process.pid)
        running = RunningService(target)
        try:
            await _wait_ready(target, process, log_path)
            running.ready_s = time.perf_counter() - spawned
            yield running
        finally:
            stopping = time.perf_counter()
            exit_code = await _stop(process)
            running.stop_s = time.perf_counter() - stopping
            running.server_log = {"exit_code": exit_code, **scan_log(log_path)}
            if database_uri is not None:
                await _drop_database(database_uri)


def scan_log(path: Path) -> dict[str, Any]:
    """Count the service's warnings, errors and tracebacks; keep a few distinct samples
    and the whole first traceback, which is what a bug report needs."""
    counts = {"warnings": 0, "errors": 0, "tracebacks": 0}
    samples: list[str] = []
    first_traceback: list[str] = []
    lines = path.read_text(errors="replace").splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Traceback"):
            counts["tracebacks"] += 1
            if not first_traceback:
                first_traceback = _traceback_at(lines, index)
        elif " WARNING " in line:
            counts["warnings"] += 1
        elif " ERROR " in line or " CRITICAL " in line:
            counts["errors"] += 1
        else:
            continue
        sample = line[24:300] if line[:4].isdigit() else line[:300]  # no timestamp: dedupe
        if sample not in samples and len(samples) < PROBLEM_SAMPLES:
            samples.append(sample)
    report: dict[str, Any] = {**counts, "samples": samples}
    if first_traceback:
        report["first_traceback"] = first_traceback
    return report


def _traceback_at(lines: list[str], start: int) -> list[str]:
    """The traceback starting at `start`: indented lines and chained ones, to its message."""
    end = start + 1
    while end < len(lines) and end - start < TRACEBACK_LINES and not lines[end][:4].isdigit():
        end += 1
    return lines[start:end]


def _service_env(fake: FakeAnthropic, data_dir: Path, mongodb_uri: str | None) -> dict[str, str]:
    """A minimal, reproducible environment: nothing from the caller's but PATH and the database."""
    env = {
        **BENCH_ENV,
        "PATH": os.environ.get("PATH", ""),
        "PORT": str(_free_port()),
        "DATA_DIR": str(data_dir),
        "JWT_SECRET": secrets.token_urlsafe(32),
        "ANTHROPIC_BASE_URL": fake.base_url,
    }
    if mongodb_uri is not None:
        env["MONGODB_URI"] = mongodb_uri
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _with_database(uri: str, name: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def _wait_ready(target: Target, process: asyncio.subprocess.Process, log: Path) -> None:
    """Poll /readyz (the database answers) until 200, the process dies, or time runs out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with aiohttp.ClientSession() as session:
        for _ in range(int(STARTUP_TIMEOUT / READY_POLL_SECONDS)):
            if time.monotonic() > deadline:
                break
            if process.returncode is not None:
                raise RuntimeError(f"the service exited at start-up:\n{_tail(log)}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                timeout = aiohttp.ClientTimeout(total=2)
                async with session.get(target.url("/readyz"), timeout=timeout) as answer:
                    if answer.status == 200:
                        return
            await asyncio.sleep(READY_POLL_SECONDS)
    raise TimeoutError(f"the service was not ready in {STARTUP_TIMEOUT:.0f} s:\n{_tail(log)}")


async def _stop(process: asyncio.subprocess.Process) -> int | None:
    """SIGTERM (the graceful path an operator's supervisor takes), SIGKILL if it hangs."""
    if process.returncode is None:
        process.terminate()
    try:
        return await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        return await process.wait()


async def _drop_database(uri: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        await client.drop_database(client.get_default_database().name)
    finally:
        await client.close()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
