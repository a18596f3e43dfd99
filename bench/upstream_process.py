"""The stamping fake upstream in a process of its own, so its CPU is neither the
service's nor the load generator's."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection

from bench.upstream import StampingUpstream

START_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class UpstreamProcess:
    base_url: str
    pid: int


@contextlib.contextmanager
def upstream_process() -> Iterator[UpstreamProcess]:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_serve, args=(sender,), name="bench-upstream", daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(START_TIMEOUT):
            raise RuntimeError("the fake upstream did not start")
        assert process.pid is not None
        yield UpstreamProcess(receiver.recv(), process.pid)
    finally:
        process.terminate()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)


def _serve(ready: Connection) -> None:
    asyncio.run(_serve_until_stopped(ready))


async def _serve_until_stopped(ready: Connection) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    upstream = StampingUpstream()
    ready.send(await upstream.start())
    ready.close()
    await stop.wait()
    await upstream.close()
