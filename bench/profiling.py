"""A py-spy recording of the service while it relays: where its CPU goes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

PY_SPY = Path(sys.executable).with_name("py-spy")
EXTRA_WAIT_SECONDS = 60.0


class PySpyRecording:
    """`py-spy record` of one process for a fixed time, started when the load is on."""

    def __init__(self, pid: int, output: Path, seconds: int) -> None:
        self.pid, self.output, self.seconds = pid, output, seconds
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            str(PY_SPY),
            *("record", "--pid", str(self.pid), "--duration", str(self.seconds)),
            *("--rate", "100", "-o", str(self.output)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        print(f"py-spy: recording pid {self.pid} for {self.seconds} s into {self.output}")

    async def finish(self) -> int | None:
        """Wait for the recording to be written; its exit status (None: never started)."""
        if self._process is None:
            return None
        return await asyncio.wait_for(self._process.wait(), self.seconds + EXTRA_WAIT_SECONDS)
