"""Conversations leaving and coming back: export, import, share links and their page."""

from __future__ import annotations

from server.contract.operations.operation import FILE_ID, ID, TOKEN, Operation, query
from server.contract.shapes.conversations import Conversation
from server.contract.shapes.portable import ConversationDocument
from server.contract.shapes.sharing import ShareCreated, SharedConversation, ShareList
from server.files.kinds import ACCEPTED

SHARING = (
    Operation(
        "get",
        "/api/conversations/{id}/export",
        "Download it: Markdown of the current branch, or the whole tree as a portable document",
        reply=ConversationDocument,
        reply_mode="validation",
        media=(("text/markdown", "The current branch as a person reads it"),),
        errors=(404, 422),
        parameters=(
            ID,
            query(
                "format",
                {"type": "string", "enum": ["json", "markdown"], "default": "json"},
                "`json`: the portable document (every branch); `markdown`: the current branch",
            ),
        ),
    ),
    Operation(
        "get",
        "/api/export",
        "All your conversations as JSON Lines, one portable document a line, streamed",
        media=(("application/x-ndjson", "One `chat-service.conversation` document a line"),),
    ),
    Operation(
        "post",
        "/api/conversations/import",
        "Import a portable document as a new conversation of yours (every id new)",
        status=201,
        reply=Conversation,
        body=ConversationDocument,
        errors=(400, 413, 422),
    ),
    Operation(
        "post",
        "/api/conversations/{id}/shares",
        "Share a snapshot of the current branch behind an unguessable link",
        status=201,
        reply=ShareCreated,
        errors=(404,),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/api/conversations/{id}/shares",
        "The conversation's live share links (their ids; the links are shown once)",
        reply=ShareList,
        errors=(404,),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/api/shares/{id}",
        "A shared snapshot, read with the link's token as `id` (no sign-in)",
        reply=SharedConversation,
        public=True,
        errors=(404,),
        parameters=(ID | {"schema": {"type": "string"}},),
    ),
    Operation(
        "delete",
        "/api/shares/{id}",
        "Revoke a share link: from then on it is a 404 everywhere",
        status=204,
        errors=(404,),
        parameters=(ID,),
    ),
    Operation(
        "get",
        "/s/{token}",
        "The read-only share page (no sign-in; no script; noindex)",
        public=True,
        errors=(404,),
        page=True,
        media=(("text/html", "The shared conversation, rendered on the server"),),
        parameters=(TOKEN,),
    ),
    Operation(
        "get",
        "/s/{token}/files/{file_id}",
        "An attachment the shared snapshot names, through the link only (no sign-in)",
        public=True,
        binary=ACCEPTED,
        errors=(404,),
        parameters=(TOKEN, FILE_ID),
    ),
)
