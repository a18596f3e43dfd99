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

    @property
    def thinking_budget(self) -> int | None:
        return int(self.thinking["budget_tokens"]) if self.thinking else None


def check_message(settings: Settings, request: TurnStart) -> None:
    """Refuse a message too long or blank, before any lookup."""
    if request.content is None:  # a regenerate: the question is stored already
        return
    if len(request.content) > settings.max_message_chars:
        raise InputTooLong(
            f"The message has {len(request.content)} characters; the limit is "
            f"{settings.max_message_chars}."
        )
    if not request.content.strip():
        raise ValidationFailed(
            "The message is blank.", [{"field": "content", "message": "must not be blank"}]
        )


async def plan_start(
    settings: Settings, store: Store, identity: Identity, request: TurnStart
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
    content = str(question["content"]) if question is not None else request.content
    assert content is not None  # the request's shape: content unless a regenerate
    check_fits(content, system_prompt, settings.context_token_budget)
    return StartPlan(conversation, new, model, system_prompt, thinking, placement, content)


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
