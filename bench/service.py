"""Start the service as an operator would, against the stamping upstream, and stop it.

`python -m server` runs in its own process so that its event loop, memory
and CPU are its own: the numbers are the service's, not the client's.

Each workload gets a fresh service and database: with the embedded database
a turn costs more the more was written before it, so a shared one would make
every number depend on which workloads ran first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from pymongo import AsyncMongoClient

from bench.target import Target

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
READY_POLL_SECONDS = 0.1
PROBLEM_SAMPLES = 8
TRACEBACK_LINES = 60
EMBEDDED_URI = re.compile(r"embedded MongoDB-compatible database at (mongodb://\S+)")

# What every bench service runs with, besides its port, data dir and upstream.
# The per-connection flood guard (20 frames/s, burst 40) is raised so that it
# never answers a bench client with `flooding`; titles are off because each
# would be one more upstream request per new conversation, not relayed to anyone.
# The connections to the model are raised past the largest workload (2,000 streams,
# however `--workers` spreads them), so that no stream waits for one.
BENCH_ENV = {
    "HOST": "127.0.0.1",
    "ANTHROPIC_API_KEY": "bench",
    "UPSTREAM_MAX_RETRIES": "0",
    "WS_FRAMES_PER_SECOND": "1000",
    "WS_FRAME_BURST": "1000",
    "CHAT_TITLES": "off",
    # The bench's upstream serves /v1/messages only; counts are background work off the
    # relay's path, like titles.
    "TOKEN_COUNTS": "estimate",
    "UPSTREAM_MAX_CONNECTIONS": "5000",
}


@dataclass
class RunningService:
    target: Target
    ready_s: float = 0.0  # from spawn to /readyz answering 200
    stop_s: float = 0.0  # from SIGTERM to exit
    server_log: dict[str, Any] = field(default_factory=dict)  # filled in once it has stopped


@contextlib.asynccontextmanager
async def running_service(
    upstream_url: str,
    upstream_pid: int | None = None,
    workers: int = 1,
    *,
    shared_database: str | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[RunningService]:
    """`python -m server` on a free port with a fresh database, ready to serve.

    The database is MONGODB_URI's server (in a database of its own, dropped
    afterwards) when set, else the embedded one in a temporary DATA_DIR; or
    `shared_database`, another bench service's, for several processes on one.
    `workers` > 1: WEB_CONCURRENCY, the service's CPU is its workers'.
    """
    external = os.environ.get("MONGODB_URI") or None
    fresh = _with_database(external, f"bench_{uuid.uuid4().hex[:12]}") if external else None
    database_uri = shared_database or fresh
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as tmp:
        settings = env or {}
        env = {**_service_env(upstream_url, Path(tmp) / "data", database_uri), **settings}
        env["WEB_CONCURRENCY"] = str(workers)
        log_path = Path(tmp) / "server.log"
        spawned = time.perf_counter()
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server", cwd=ROOT, env=env, stdout=log, stderr=log
            )
        base_url = f"http://127.0.0.1:{env['PORT']}"
        running: RunningService | None = None
        try:
            await _wait_ready(base_url, process, log_path)
            uri = database_uri or _embedded_uri(log_path)
            database_pid = None if external or uri is None else await _server_pid(uri)
            target = Target(
                base_url,
                env["JWT_SECRET"],
                upstream_url,
                process.pid,
                database_uri=uri,
                database_pid=database_pid,
                upstream_pid=upstream_pid,
                worker_pids=_workers(process.pid, database_pid) if workers > 1 else (),
            )
            running = RunningService(target, ready_s=time.perf_counter() - spawned)
            yield running
        finally:
            stopping = time.perf_counter()
            exit_code = await _stop(process)
            stop_s = time.perf_counter() - stopping
            server_log = {"exit_code": exit_code, **scan_log(log_path)}
            if running is not None:
                running.stop_s, running.server_log = stop_s, server_log
            if fresh is not None:
                await _drop_database(fresh)


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


def _service_env(upstream_url: str, data_dir: Path, mongodb_uri: str | None) -> dict[str, str]:
    """A minimal, reproducible environment: nothing from the caller's but PATH, the database,
    REDIS_URL (to measure what the cluster's stream publishing costs the relay) and
    EMBEDDED_DATABASE_PROFILE (cProfile the embedded database into that file)."""
    env = {
        **BENCH_ENV,
        "PATH": os.environ.get("PATH", ""),
        "PORT": str(_free_port()),
        "DATA_DIR": str(data_dir),
        "JWT_SECRET": secrets.token_urlsafe(32),
        "ANTHROPIC_BASE_URL": upstream_url,
    }
    if mongodb_uri is not None:
        env["MONGODB_URI"] = mongodb_uri
    for passed in ("REDIS_URL", "EMBEDDED_DATABASE_PROFILE"):
        if value := os.environ.get(passed):
            env[passed] = value
    return env


def _embedded_uri(log: Path) -> str | None:
    """The embedded database's address, as the service logs it at start-up."""
    found = EMBEDDED_URI.search(log.read_text(errors="replace"))
    return found.group(1) if found else None


async def _server_pid(uri: str) -> int | None:
    """The database server's process id, from serverStatus (mongoeco reports its own)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        status = await client.get_default_database().command("serverStatus")
        return int(status["pid"]) if "pid" in status else None
    finally:
        await client.close()


def _workers(supervisor: int, database: int | None) -> tuple[int, ...]:
    """The supervisor's worker processes: its children but the database and the
    multiprocessing resource tracker (Linux /proc)."""
    found = []
    for tasks in Path(f"/proc/{supervisor}/task").glob("*/children"):
        for child in map(int, tasks.read_text().split()):
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            if child != database and b"resource_tracker" not in command:
                found.append(child)
    return tuple(sorted(found))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _with_database(uri: str, name: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def _wait_ready(base_url: str, process: asyncio.subprocess.Process, log: Path) -> None:
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
                async with session.get(f"{base_url}/readyz", timeout=timeout) as answer:
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
