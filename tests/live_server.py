"""The service as an operator runs it: `python -m server` in its own process.

For what an in-process test server cannot show: a real browser against it,
a SIGKILL in the middle of a turn, start-up refusals, the access log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "PORT": str(self.port)}
        self.process: subprocess.Popen[str] | None = None
        # A file, not a pipe: a pipe nobody reads fills up and blocks the server's logging.
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as the server)

    def start(self, timeout: float = 30.0) -> LiveServer:
        """Start and wait until /healthz answers."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server"],
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", ""), **self.env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early: {self.output()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1),
            ):
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError("server did not answer /healthz in time")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as when a machine dies."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def output(self) -> str:
        """What the process has written so far (stdout and stderr)."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> str:
        """SIGTERM and wait; returns what the process wrote."""
        if self.process is None:
            return ""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.output()


@contextlib.contextmanager
def live_server(env: dict[str, str]) -> Iterator[LiveServer]:
    server = LiveServer(env).start()
    try:
        yield server
    finally:
        server.stop()


# From async tests: an asyncio subprocess, so waiting on it never blocks the loop.


def server_env(**extra: str) -> dict[str, str]:
    """This process's environment without any JWT setting, listen address or model key."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("JWT_") and k not in ("HOST", "PORT")
    }
    env.pop("ANTHROPIC_API_KEY", None)
    return {**env, **extra}


async def spawn(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """`python -m server ARGS` with `env`, its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_cli(*args: str, env: dict[str, str], timeout: float = 20) -> tuple[int, str, str]:
    process = await spawn(*args, env=env)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
