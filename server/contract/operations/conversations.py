"""Conversations, their projects and tags, their messages, ratings and search."""

from __future__ import annotations

from server.contract.operations.operation import ARCHIVED, ID, LIMIT, Operation, query
from server.contract.shapes.conversations import Conversation, ConversationPage, LabelList
from server.contract.shapes.messages import MessageFeedback, MessagePage, SearchPage
from server.schemas import CreateConversation, RateMessage, UpdateConversation

CONVERSATIONS = (
    Operation(
        "post",
        "/api/conversations",
        "Create a conversation",
        status=201,
        reply=Conversation,
        body=CreateConversation,
        errors=(400, 413, 422),
    ),
    Operation(
        "get",
        "/api/conversations",
        "Your conversations, pinned first, then most recently active first",
        reply=ConversationPage,
        errors=(422,),
        parameters=(
            query("limit", LIMIT | {"maximum": 100, "default": 20}, "Page size"),
            query(
                "cursor",
                {"type": "string", "maxLength": 512},
                "`next_cursor` of a page (with the same filters)",
            ),
            ARCHIVED,
            query("project", {"type": "string", "maxLength": 100}, "Only this project's"),
            query("tag", {"type": "string", "maxLength": 40}, "Only those with this tag"),
            query("pinned", {"type": "boolean"}, "Only the pinned ones, or the unpinned"),
            query(
                "unfiled",
                {"type": "boolean", "default": False},
                "Only those in no project (not with `project`)",
            ),
        ),
    ),
    Operation(
        "get",
        "/api/projects",
        "Your projects, with how many conversations each holds",
        reply=LabelList,
        errors=(422,),
        parameters=(ARCHIVED,),
    ),
    Operation(
        "get",
        "/api/tags",
        "Your tags, with how many conversations carry each",
        reply=LabelList,
        errors=(422,),
        parameters=(ARCHIVED,),
    ),
    Operation(
        "get",
        "/api/conversations/{id}",
        "One conversation",
        reply=Conversation,
        errors=(404,),
        parameters=(ID,),
    ),
    Operation(
        "patch",
        "/api/conversations/{id}",
        "Rename, archive, file (project, pin, tags), change model or system prompt, "
        "or switch branches (`current_leaf`)",
        reply=Conversation,
        body=UpdateConversation,
        errors=(400, 404, 413, 422),
        parameters=(ID,),
    ),
    Operation(
        "delete",
        "/api/conversations/{id}",
        "Delete it with its messages (stops its turn)",
        status=204,
        errors=(404,),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/api/conversations/{id}/messages",
        "One branch's messages, the latest page first: the current branch, or `leaf`'s",
        reply=MessagePage,
        errors=(404, 422),
        parameters=(
            ID,
            query("limit", LIMIT | {"maximum": 200, "default": 50}, "Page size"),
            query("before", {"type": "integer", "minimum": 1}, "`next_cursor` of a page"),
            query(
                "leaf",
                {"type": "string", "maxLength": 64},
                "The branch ending at this message instead of `current_leaf`",
            ),
        ),
    ),
    Operation(
        "put",
        "/api/messages/{id}/feedback",
        "Rate one of your answers (an assistant message), with an optional reason",
        reply=MessageFeedback,
        body=RateMessage,
        errors=(400, 404, 413, 422),
        parameters=(ID,),
    ),
    Operation(
        "delete",
        "/api/messages/{id}/feedback",
        "Clear your rating of an answer",
        status=204,
        errors=(404, 422),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/api/search",
        "Your own messages holding a word that begins with each word asked (case and accents "
        "aside), newest first",
        reply=SearchPage,
        errors=(422,),
        parameters=(
            {"name": "q", "in": "query", "required": True}
            | {"schema": {"type": "string", "minLength": 1, "maxLength": 200}}
            | {"description": "What to find"},
            query("limit", LIMIT | {"maximum": 100, "default": 20}, "At most this many"),
        ),
    ),
)
