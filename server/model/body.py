"""The upstream answer's bytes as they arrive, with as few layers as the SDK allows.

The SDK's aiohttp transport hands the body to httpx, which passes each read
through five async generators (its stream wrappers, a content decoder, two
chunkers) before `iter_bytes` yields it. At 50 tokens a second every token is
its own read, so those layers ran once per token: about 7 % of the service's
CPU at 200 streams (py-spy, `python -m bench --only ws-200`). When the body is
not content-encoded, aiohttp's own reader is read instead; the request, its
retries, its errors and the closing of the connection stay the SDK's.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

import aiohttp
import httpx2
from anthropic import AsyncAPIResponse


def body_of(response: AsyncAPIResponse[Any]) -> AsyncIterable[bytes]:
    """Chunks of the body, read from aiohttp directly when that is the same bytes.

    Anything else (a content encoding to undo, another HTTP client, an SDK
    whose transport is laid out differently) is read through the SDK.
    """
    reader = _aiohttp_reader(response.http_response)
    return reader.iter_any() if reader is not None else response.iter_bytes()


def _aiohttp_reader(http: httpx2.Response) -> aiohttp.StreamReader | None:
    if http.headers.get("content-encoding", "identity").lower() != "identity":
        return None  # httpx's decoder is needed
    # httpx's `BoundAsyncStream` around the vendored `AiohttpResponseStream`.
    transport_stream = getattr(http.stream, "_stream", None)
    aiohttp_response = getattr(transport_stream, "_aiohttp_response", None)
    if not isinstance(aiohttp_response, aiohttp.ClientResponse):
        return None
    return aiohttp_response.content
