"""A running turn's state, shared by the engine, the tool loop and the checkpointer."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from server.limits import TurnSlot
from server.storage.client import Document
from server.storage.turn_records import Progress, TurnRecord
from server.turns.answer import Answer
from server.turns.log import TurnLog
from server.turns.spending import Spending

TurnKey = tuple[str, str, str]


@dataclass(eq=False)
class ActiveTurn:
    record: TurnRecord
    content: str
    system_prompt: str | None
    thinking_budget: int | None
    answer: Answer
    log: TurnLog
    task: asyncio.Task[None] | None = None
    slot: TurnSlot | None = None  # its places in the user's and tenant's limits
    origin: str | None = None  # the socket that started it: not pushed what it is told
    # A strong reference: the loop holds tasks weakly, and a shielded ending
    # must outlive a `_run` that a second cancel ended early.
    ending: asyncio.Task[None] | None = None
    stopping: bool = False  # its task was cancelled: by a user, shutdown, or a lost lease
    cancel_requested: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    started_at: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    attachments: list[Document] = field(default_factory=list)  # the question's files
    spending: Spending = field(default_factory=Spending)  # billed so far, ended or not

    @property
    def key(self) -> TurnKey:
        identity = self.record.identity
        return (identity.tenant_id, identity.user_id, self.record.turn_id)

    def stop(self, *, requested: bool) -> None:
        """Cancel the task, once: a second cancel would cut short its clean-up.

        `requested`: the user asked (stored `cancelled`); otherwise shutdown or a
        lost lease stopped it (stored `interrupted`)."""
        if self.task is None or self.ending is not None or self.stopping:
            return
        self.stopping = True
        self.cancel_requested = requested
        self.task.cancel()

    def progress(self) -> Progress:
        """The answer so far: every round's blocks, and the text still streaming."""
        text = self.log.text
        return Progress(text, self.answer.blocks(text), self.log.last_seq)
