"""The REST half of the service, and the entry point to the rest.

A client holds one `ChatClient`: REST calls go through it, `connect()` opens
the WebSocket that carries turns and pushes, `ask_sse()` runs a turn over
Server-Sent Events for networks whose proxies break WebSockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import aiohttp

from chat_client.errors import ApiError
from chat_client.mirror import Mirror
from chat_client.sse import stream_turn
from chat_client.ws import WsSession

JSON = dict[str, Any]


class ChatClient:
    def __init__(
        self, base_url: str, token: str, *, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._own_session = session is None
        self.http = session or aiohttp.ClientSession()
        self.mirror = Mirror()  # the user's conversations, kept current by sync and pushes

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session:
            await self.http.close()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST call; a problem+json answer is raised as `ApiError` with its `code`."""
        async with self.http.request(
            method, self.base_url + path, headers=self.headers, **kwargs
        ) as response:
            body = await response.json() if response.content_type.endswith("json") else None
            if response.status >= 400:
                raise ApiError.from_problem(response.status, body)
            return body

    # Conversations

    async def conversations(
        self,
        *,
        cursor: str | None = None,
        archived: bool = False,
        project: str | None = None,
        unfiled: bool = False,
        tag: str | None = None,
        pinned: bool | None = None,
    ) -> JSON:
        """A page, pinned first; pass its `next_cursor` back with the same filters.
        `unfiled`: in no project (not with `project`)."""
        params = {"archived": "true" if archived else "false"}
        for name, value in (("cursor", cursor), ("project", project), ("tag", tag)):
            if value:
                params[name] = value
        if unfiled:
            params["unfiled"] = "true"
        if pinned is not None:
            params["pinned"] = "true" if pinned else "false"
        page: JSON = await self.request("GET", "/api/conversations", params=params)
        return page

    async def projects(self, *, archived: bool = False) -> list[JSON]:
        """`[{name, count}]`: what to offer as a project filter."""
        params = {"archived": "true" if archived else "false"}
        items: list[JSON] = (await self.request("GET", "/api/projects", params=params))["items"]
        return items

    async def tags(self, *, archived: bool = False) -> list[JSON]:
        params = {"archived": "true" if archived else "false"}
        items: list[JSON] = (await self.request("GET", "/api/tags", params=params))["items"]
        return items

    async def create_conversation(self, **fields: Any) -> JSON:
        created: JSON = await self.request("POST", "/api/conversations", json=fields)
        return created

    async def update_conversation(self, conversation_id: str, **changes: Any) -> JSON:
        changed: JSON = await self.request(
            "PATCH", f"/api/conversations/{conversation_id}", json=changes
        )
        return changed

    async def delete_conversation(self, conversation_id: str) -> None:
        await self.request("DELETE", f"/api/conversations/{conversation_id}")

    async def messages(self, conversation_id: str, *, before: int | None = None) -> JSON:
        params = {"before": str(before)} if before is not None else {}
        page: JSON = await self.request(
            "GET", f"/api/conversations/{conversation_id}/messages", params=params
        )
        return page

    # Leaving and coming back as a document, and share links

    async def export(self, conversation_id: str) -> JSON:
        """The whole tree as the portable document `import_conversation` takes back."""
        document: JSON = await self.request(
            "GET", f"/api/conversations/{conversation_id}/export", params={"format": "json"}
        )
        return document

    async def import_conversation(self, document: JSON) -> JSON:
        """A new conversation of the caller's, every id new."""
        created: JSON = await self.request("POST", "/api/conversations/import", json=document)
        return created

    async def share(self, conversation_id: str) -> JSON:
        """`{id, url, created_at}`: keep `url` now, the service cannot show it again."""
        made: JSON = await self.request("POST", f"/api/conversations/{conversation_id}/shares")
        return made

    async def revoke_share(self, share_id: str) -> None:
        await self.request("DELETE", f"/api/shares/{share_id}")

    # Coming back

    async def sync(self, since: str | None = None) -> JSON:
        """What changed since `since` (everything without it); raises `sync_expired` (410)."""
        page: JSON = await self.request(
            "GET", "/api/sync", params={"since": since} if since else {}
        )
        return page

    async def catch_up(self) -> JSON:
        """Bring `mirror` up to date in one request (a full sync if its cursor expired)."""
        return await self.mirror.catch_up(self.sync)

    async def running_turns(self) -> list[JSON]:
        page: JSON = await self.request("GET", "/api/turns", params={"status": "running"})
        items: list[JSON] = page["items"]
        return items

    async def tools(self) -> list[JSON]:
        listed: list[JSON] = (await self.request("GET", "/api/tools"))["tools"]
        return listed

    # Turns

    async def cancel(self, turn_id: str) -> bool:
        """Stop a running turn (it ends with `turn.cancelled` wherever it is followed);
        False when it had already ended."""
        try:
            await self.request("POST", f"/api/turns/{turn_id}/cancel")
        except ApiError as error:
            if error.code == "turn_not_running":
                return False
            raise
        return True

    async def connect(self, *, heartbeat: float = 20.0) -> WsSession:
        """The WebSocket: turns with automatic resume, and pushes applied to `mirror`.

        After each reconnect the mirror catches up with `/api/sync` before the
        turns are resumed: what changed while the socket was down is not lost."""
        url = self.base_url.replace("http", "ws", 1) + "/ws"
        session = WsSession(
            self.http,
            url,
            self.token,
            on_push=self.mirror.apply_push,
            on_reconnect=self.catch_up,
            heartbeat=heartbeat,
        )
        await session.open()
        self.mirror.started(session.ready.get("cursor"))
        return session

    def ask_sse(self, content: str, **fields: Any) -> AsyncIterator[JSON]:
        """Run a turn over SSE, re-attached with `Last-Event-ID` after a dropped stream."""
        return stream_turn(self.http, self.base_url, self.token, {"content": content, **fields})
