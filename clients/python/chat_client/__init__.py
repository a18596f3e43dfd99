"""The chat service's reference client: what a client must do, small enough to port.

    async with ChatClient("http://127.0.0.1:8080", token) as client:
        socket = await client.connect()
        async for event in socket.ask("A soup for a cold evening?"):
            ...

- `ChatClient`: REST, `sync`/`catch_up` into `mirror`, `cancel`, `ask_sse`.
- `WsSession`: turns over one WebSocket, resumed by `after_seq` after a drop.
- `Answer`, `seq_after`: the `seq` rules (docs/protocol.md, "`seq` and resume").
- `Mirror`: the user's conversations kept current by `/api/sync` and pushes.
"""

from chat_client.client import ChatClient
from chat_client.errors import ApiError
from chat_client.mirror import Mirror
from chat_client.protocol import Answer, seq_after
from chat_client.ws import WsSession

__all__ = ["Answer", "ApiError", "ChatClient", "Mirror", "WsSession", "seq_after"]
