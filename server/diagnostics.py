"""`kill -USR1 <pid>`: every asyncio task of the process, and where each one waits, in the log.

A turn that never ends or a shutdown that hangs is otherwise a black box:
py-spy shows the event loop idle, and a task's own stack stops at its first
`await`. Python 3.14 has `python -m asyncio pstree <pid>` for this; on 3.13
the process reports it itself, following each task's chain of awaits through
coroutines and async generators down to the future it waits on. (It found the
bench's lost cancels: the turns were streaming, the cancels never sent.)
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

MAX_DEPTH = 40  # awaits followed per task: enough for any chain of ours


async def on_sigusr1(_app: object) -> AsyncIterator[None]:
    """An app's `cleanup_ctx`: SIGUSR1 dumps the tasks while the app runs."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks, loop)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)


def dump_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = sorted(asyncio.all_tasks(loop), key=lambda task: task.get_name())
    lines = [f"SIGUSR1: {len(tasks)} task(s), each with where it waits (outermost first):"]
    for task in tasks:
        state = "cancelling" if task.cancelling() else "pending"
        chain = " > ".join(await_chain(task.get_coro())) or "(not started)"
        lines.append(f"  {task.get_name()} [{state}]: {chain}")
    log.warning("\n".join(lines))


def await_chain(awaitable: object) -> list[str]:
    """The functions a coroutine waits in, outermost first, ending with what it waits on."""
    steps: list[str] = []
    current: object = awaitable
    while current is not None and len(steps) < MAX_DEPTH:
        frame = _frame_of(current)
        if frame is not None:
            where = f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"
            steps.append(f"{frame.f_code.co_qualname} ({where})")
        elif isinstance(current, asyncio.Future):
            steps.append(f"<{type(current).__name__}>")
            break
        current = _awaited_by(current)
    return steps


def _frame_of(obj: object) -> FrameType | None:
    for name in ("cr_frame", "ag_frame", "gi_frame"):
        frame = getattr(obj, name, None)
        if frame is not None:
            return frame  # type: ignore[no-any-return]
    return None


def _awaited_by(obj: object) -> object:
    for name in ("cr_await", "ag_await", "gi_yieldfrom"):
        inner = getattr(obj, name, None)
        if inner is not None:
            return inner
    # `async for` over an async generator awaits an `asend`/`athrow` object, which
    # names its generator only to the garbage collector; a future's iterator likewise.
    for referent in gc.get_referents(obj):
        if inspect.isasyncgen(referent) or isinstance(referent, asyncio.Future):
            return referent
    return None
