"""What a turn start asks for, checked and resolved before anything is claimed or stored.

Every refusal here costs the user nothing, no write and no place in its
limits: the engine takes those only for a start that passed these checks, so
a bad request from a user at its limits is still told what is wrong with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.config import Settings
from server.errors import InputTooLong, ValidationFailed
from server.files.blocks import reference
from server.files.store import FileStore
from server.identity import Identity
from server.schemas import TurnStart
from server.storage.client import Document
from server.storage.conversations import Store, conversation_document
from server.storage.migrations import linked
from server.storage.tree import MessageTree
from server.storage.turn_records import Placement
from server.turns.choices import choose_model, thinking_setting
from server.turns.context import check_fits


@dataclass(frozen=True, slots=True)
class StartPlan:
    """A start that passed its checks: its conversation, and what the turn runs with."""

    conversation: Document
    new_conversation: bool  # built here, stored by the turn's claim
    model: str
    system_prompt: str | None
    thinking: dict[str, Any] | None  # as stored; None: off
    placement: Placement  # where it goes in the conversation's tree
    content: str  # the question: the request's, or the one a regenerate answers again
    attachments: list[Document]  # its files, as the user message stores them (references)

    @property
    def thinking_budget(self) -> int | None:
        return int(self.thinking["budget_tokens"]) if self.thinking else None


def check_message(settings: Settings, request: TurnStart) -> None:
    """Refuse a message too long or blank, or too many files, before any lookup."""
    check_attachments(settings, request.attachments)
    if request.content is None:  # a regenerate, or files alone
        return
    if len(request.content) > settings.max_message_chars:
        raise InputTooLong(
            f"The message has {len(request.content)} characters; the limit is "
            f"{settings.max_message_chars}."
        )
    if not request.content.strip() and not request.attachments:
        raise ValidationFailed(
            "The message is blank.", [{"field": "content", "message": "must not be blank"}]
        )


def check_attachments(settings: Settings, file_ids: list[str]) -> None:
    if len(file_ids) > settings.max_attachments:
        raise ValidationFailed(
            f"{len(file_ids)} attachments; a message takes at most {settings.max_attachments}.",
            [{"field": "attachments", "message": f"at most {settings.max_attachments} items"}],
        )
    seen: set[str] = set()
    for file_id in file_ids:
        if file_id in seen:
            raise ValidationFailed(
                f"The file {file_id!r} is attached twice.",
                [{"field": "attachments", "message": f"{file_id} is given twice"}],
            )
        seen.add(file_id)


async def plan_start(
    settings: Settings, store: Store, files: FileStore, identity: Identity, request: TurnStart
) -> StartPlan:
    """The conversation the turn goes to (read, or a new one built), its model, system
    prompt and thinking; raises if the model is not offered or the message cannot fit."""
    placement = Placement()
    if request.conversation_id is not None:
        conversation = await store.get_conversation(identity, request.conversation_id)
        conversation = await linked(store.db, conversation)
        new = False
        model = choose_model(settings, request.model, conversation.get("model"))
        placement = await place(store.tree, conversation, request)
    else:
        model = choose_model(settings, request.model)
        conversation = conversation_document(
            identity, title="", model=model, system_prompt=None, running_turn_id=request.turn_id
        )
        new = True
    system_prompt = conversation.get("system_prompt")
    assert system_prompt is None or isinstance(system_prompt, str)
    thinking = (
        thinking_setting(settings, request.thinking)
        if request.thinking is not None
        else conversation.get("thinking")
    )
    question = placement.question
    if question is not None:  # a regenerate: the stored question, its files with it
        content, attachments = str(question["content"]), list(question.get("blocks") or [])
    else:
        content = request.content or ""
        attachments = []
    check_fits(content, system_prompt, settings.context_token_budget, attachments)
    if request.attachments:  # another user's file, or a missing one: 404, nothing stored
        attachments = [reference(doc) for doc in await files.owned(identity, request.attachments)]
        check_fits(content, system_prompt, settings.context_token_budget, attachments)
    return StartPlan(
        conversation, new, model, system_prompt, thinking, placement, content, attachments
    )


async def place(tree: MessageTree, conversation: Document, request: TurnStart) -> Placement:
    """Where the turn goes: after the answer the client named, again beside one, or after
    the branch clients see. An id of another conversation is a 404, as is another user's."""
    conversation_id = str(conversation["_id"])
    if request.regenerate_message_id is not None:
        answer = await tree.answer_in(
            conversation_id, request.regenerate_message_id, field="regenerate_message_id"
        )
        question = await tree.message_in(
            conversation_id, str(answer["parent_id"]), field="regenerate_message_id"
        )
        return Placement.again(question, str(answer["_id"]))
    if request.parent_given:
        if request.parent_message_id is None:
            return Placement()  # a new first question: a sibling of the root
        parent = await tree.answer_in(
            conversation_id, request.parent_message_id, field="parent_message_id"
        )
        return Placement.after(parent)
    leaf = conversation.get("current_leaf")
    if leaf is None:
        return Placement()
    return Placement.after(await tree.message_in(conversation_id, str(leaf), field="current_leaf"))
