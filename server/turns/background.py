"""Background work after a turn (titles, token counts): tasks held until done.

The loop holds tasks weakly, so each is kept in a set its owner awaits at
shutdown. Owners keep asking and writing apart: a question to the model may be
dropped at shutdown, a database write under way is finished (the embedded
database stalls for its lease time-out after a write cut off mid-flight).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def spawn(tasks: set[asyncio.Task[None]], coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(coroutine)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
