"""A turn's plain records and names: its key, its ids, how it ended, its lease.

Apart from `turns.py`, which holds the database operations (`TurnStore`),
because the turn engine and the checkpoints pass these values around without
needing the database: a running turn holds a `TurnRecord`, the finaliser
hands an `Outcome` and a `Progress` to the store, and a checkpoint reads
back a `Lease`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from server.errors import Conflict, Interrupted
from server.identity import Identity
from server.storage.client import Document
from server.storage.terms import FIELD, terms
from server.storage.values import new_id, now

RUNNING = "running"
STREAMING = "streaming"
RECOVERED = "recovered"  # the owner of a turn taken over by recovery
INTERRUPTED = Interrupted().describe()


def turn_key(identity: Identity, turn_id: str) -> str:
    """A turn's `_id`: its owner and `turn_id`, so that the primary key is the idempotency claim.

    A JSON array, so that no tenant, user or turn id can make two keys equal.
    """
    return orjson.dumps([identity.tenant_id, identity.user_id, turn_id]).decode()


class TurnExists(Conflict):
    """The turn id is taken: `stored` is that turn, to replay or to refuse while it runs."""

    def __init__(self, stored: Document) -> None:
        super().__init__(f"Turn {stored['turn_id']!r} already exists")
        self.stored = stored


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """The ids a running turn needs, fixed when it begins."""

    id: str
    turn_id: str
    identity: Identity
    conversation_id: str
    user_message_id: str
    assistant_message_id: str
    assistant_seq: int
    model: str
    created_at: datetime
    new_conversation: bool
    # Where the turn sits in the conversation's tree: the question's parent (None:
    # the root) and the question's ancestors, root first. The answer's parent is
    # the question; on a regenerate the question is an existing message.
    parent_id: str | None = None
    ancestors: tuple[str, ...] = ()
    regenerate_of: str | None = None  # the answer this one is a new sibling of

    @staticmethod
    def starting(
        identity: Identity,
        turn_id: str,
        conversation_id: str,
        model: str,
        new_conversation: bool,
        placement: Placement,
    ) -> TurnRecord:
        """A turn about to begin: new ids, its place in the tree; its seq once claimed."""
        question = placement.question
        return TurnRecord(
            id=turn_key(identity, turn_id),
            turn_id=turn_id,
            identity=identity,
            conversation_id=conversation_id,
            user_message_id=str(question["_id"]) if question is not None else new_id(),
            assistant_message_id=new_id(),
            assistant_seq=0,
            model=model,
            created_at=now(),
            new_conversation=new_conversation,
            parent_id=placement.parent_id,
            ancestors=placement.ancestors,
            regenerate_of=placement.regenerate_of,
        )

    @property
    def answer_ancestors(self) -> list[str]:
        return [*self.ancestors, self.user_message_id]

    def assistant_document(
        self,
        text: str,
        status: str = STREAMING,
        blocks: list[Document] | None = None,
        **fields: Any,
    ) -> Document:
        """The answer as stored: inserted by `begin`, and stood in for when it cannot be read."""
        return {
            "_id": self.assistant_message_id,
            "conversation_id": self.conversation_id,
            **self.identity.scope,
            "seq": self.assistant_seq,
            "parent_id": self.user_message_id,
            "ancestors": self.answer_ancestors,
            "role": "assistant",
            "content": text,
            "blocks": blocks if blocks is not None else [],
            "status": status,
            "turn_id": self.turn_id,
            "model": self.model,
            "usage": None,
            "stop_reason": None,
            "error": None,
            "feedback": None,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            **fields,
        }

    def ended_answer(self, progress: Progress, outcome: Outcome) -> Document:
        """The answer as its ending leaves it: told from this when it cannot be read back
        (stored elsewhere, or not stored yet)."""
        answer = self.assistant_document(
            progress.text, outcome.status, blocks=progress.blocks, error=outcome.error
        )
        answer.update(usage=outcome.usage, stop_reason=outcome.stop_reason)
        return answer

    def question_document(
        self, content: str, seq: int, attachments: list[Document] | None = None
    ) -> Document:
        """The user's message of a turn that asks anew (not of a regenerate).

        Its `blocks` are its files' references (`files/blocks.py`), else None."""
        return {
            **self.assistant_document(content, "complete"),
            "_id": self.user_message_id,
            "seq": seq,
            "parent_id": self.parent_id,
            "ancestors": list(self.ancestors),
            "role": "user",
            "blocks": attachments or None,  # a user's message is its text, and its files
            FIELD: terms(self.identity.tenant_id, self.identity.user_id, content),
        }

    def turn_document(self, **fields: Any) -> Document:
        """The turn as stored when it begins."""
        return {
            "_id": self.id,
            **self.identity.scope,
            "turn_id": self.turn_id,
            "conversation_id": self.conversation_id,
            "status": RUNNING,
            "model": self.model,
            "user_message_id": self.user_message_id,
            "assistant_message_id": self.assistant_message_id,
            "parent_message_id": self.parent_id,
            "regenerate_message_id": self.regenerate_of,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            **fields,
        }


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a new turn goes in its conversation's tree, resolved before anything is written.

    A new question follows `parent_id` (None: it starts the conversation); a
    regenerate answers the existing `question` again, beside `regenerate_of`."""

    parent_id: str | None = None
    ancestors: tuple[str, ...] = ()  # the question's, root first
    question: Document | None = None
    regenerate_of: str | None = None

    @staticmethod
    def after(parent: Document | None) -> Placement:
        """A new question following `parent` (None: the root)."""
        if parent is None:
            return Placement()
        return Placement(str(parent["_id"]), (*parent.get("ancestors", ()), str(parent["_id"])))

    @staticmethod
    def again(question: Document, answer_id: str) -> Placement:
        """A new answer to `question`, beside the answer `answer_id`."""
        parent = question.get("parent_id")
        ancestors = tuple(question.get("ancestors", ()))
        return Placement(parent, ancestors, question, answer_id)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a turn ended: what the finaliser writes, once."""

    status: str  # complete, cancelled, interrupted, error
    usage: dict[str, Any] | None = None  # tokens by kind, and `cost_usd`
    stop_reason: str | None = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """An answer as far as it got: its plain text and its content blocks, as of event `seq`."""

    text: str
    blocks: list[Document]
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Ending:
    """A turn as it ended in storage, whoever wrote the ending, with its answer."""

    turn: Document
    message: Document
    ours: bool  # False: another process (the sweep) had ended it first
    conversation: Document | None = None  # as the ending left it, when this process freed it
    stored: bool = True  # False: given up at shutdown, the database unreachable


# `ended`: ended by this process since the batch was taken (its own finaliser).
Lease = Literal["held", "cancel_requested", "lost", "ended"]


def answer_fields(
    identity: Identity,
    text: str,
    blocks: list[Document],
    usage: Document | None,
    stop_reason: str | None,
) -> Document:
    """What an ending writes on its answer, its search terms with it."""
    return {
        "content": text,
        "blocks": blocks,
        "usage": usage,
        "stop_reason": stop_reason,
        FIELD: terms(identity.tenant_id, identity.user_id, text),
    }
