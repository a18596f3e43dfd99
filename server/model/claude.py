"""Claude through the official `anthropic` SDK.

Provider failures leave here only as the domain's `UpstreamFailure`s, never as
raw provider bodies.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

import aiohttp
import anthropic
import httpx2

from server.config import Settings
from server.errors import (
    UpstreamError,
    UpstreamFailure,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from server.model.assembler import MessageAssembler
from server.model.base import Chunk, ContextMessage, TextChunk, clean_title
from server.model.body import body_of
from server.model.caching import cached_messages, cached_system, cached_tools
from server.model.failures import failure_for
from server.model.sse import events_of

# Server tools still in beta: offering one needs its `anthropic-beta` header.
BETA_TOOLS = {"web_fetch_20250910": "web-fetch-2025-09-10"}

TITLE_SYSTEM_PROMPT = (
    "Write a short conversation title (at most six words, no quotes, no trailing "
    "punctuation) for the exchange below. Answer with the title only."
)


class ClaudeModel:
    """`AsyncAnthropic` for the process; closing the stream closes the upstream request.

    The SDK makes the request (auth, headers, retries before the first byte,
    error types) over its aiohttp transport; the answer's events are read raw
    (`sse.py`, `assembler.py`) rather than through its streaming helper, which
    builds typed objects and a snapshot per event.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        timeout = httpx2.Timeout(settings.upstream_timeout_seconds, connect=10.0)
        self._client = anthropic.AsyncAnthropic(
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            max_retries=settings.upstream_max_retries,
            timeout=timeout,
            http_client=anthropic.DefaultAioHttpClient(
                timeout=timeout,
                # The SDK's keep-alive default; the cap on streams at once is the operator's.
                limits=httpx2.Limits(
                    max_connections=settings.upstream_max_connections,
                    max_keepalive_connections=100,
                ),
            ),
        )

    async def stream(
        self,
        *,
        model: str,
        system: str | None,
        messages: Sequence[ContextMessage],
        max_tokens: int,
        tools: Sequence[dict[str, Any]] = (),
        thinking_budget: int | None = None,
        cache: bool | None = None,
    ) -> AsyncGenerator[Chunk]:
        """`cache`: mark prompt-cache breakpoints (`caching.py`); None: as PROMPT_CACHE says."""
        if cache is None:
            cache = self._settings.prompt_cache
        ttl = self._settings.prompt_cache_ttl
        extra: dict[str, Any] = {}
        if system:
            extra["system"] = cached_system(system, ttl) if cache else system
        if tools:
            extra["tools"] = cached_tools(tools, ttl) if cache and not system else list(tools)
            betas = sorted({BETA_TOOLS[t["type"]] for t in tools if t.get("type") in BETA_TOOLS})
            if betas:
                extra["extra_headers"] = {"anthropic-beta": ",".join(betas)}
        if thinking_budget is not None:
            extra["thinking"] = {"type": "enabled", "budget_tokens": thinking_budget}
        message = MessageAssembler()
        try:
            async with self._client.messages.with_streaming_response.create(
                model=model,
                max_tokens=max_tokens,
                messages=cached_messages(messages, ttl) if cache else list(messages),  # type: ignore[arg-type]
                stream=True,
                **extra,
            ) as response:
                async for data in events_of(body_of(response)):
                    chunk = message.feed(data)
                    if chunk is not None:
                        yield chunk
        except Exception as error:
            raise upstream_failure(error) from error
        yield message.finished()

    async def count_tokens(
        self, *, model: str, messages: Sequence[ContextMessage], tools: Sequence[dict[str, Any]]
    ) -> int | None:
        """The prompt's input tokens by Anthropic's counting endpoint (free, rate-limited apart)."""
        extra: dict[str, Any] = {}
        if tools:
            extra["tools"] = list(tools)
            betas = sorted({BETA_TOOLS[t["type"]] for t in tools if t.get("type") in BETA_TOOLS})
            if betas:
                extra["extra_headers"] = {"anthropic-beta": ",".join(betas)}
        try:
            counted = await self._client.messages.count_tokens(
                model=model,
                messages=list(messages),  # type: ignore[arg-type]
                **extra,
            )
        except Exception as error:
            raise upstream_failure(error) from error
        return int(counted.input_tokens)

    async def title(self, question: str, answer: str) -> str:
        parts: list[str] = []
        exchange = f"User: {question[:2000]}\n\nAssistant: {answer[:2000]}"
        # Not cached: a title's prompt is new every time, and below any model's minimum.
        async for chunk in self.stream(
            model=self._settings.title_model,
            system=TITLE_SYSTEM_PROMPT,
            messages=[{"role": "user", "content": exchange}],
            max_tokens=24,
            cache=False,
        ):
            if isinstance(chunk, TextChunk):
                parts.append(chunk.text)
        return clean_title("".join(parts))

    async def close(self) -> None:
        await self._client.close()


def upstream_failure(error: Exception) -> UpstreamFailure:
    """Map whatever the SDK raised to a domain error with a message a person can act on."""
    if isinstance(error, UpstreamFailure):
        return error
    # aiohttp's errors come from the body read straight from it (`body.py`).
    if isinstance(error, anthropic.APITimeoutError | httpx2.TimeoutException | TimeoutError):
        failure: UpstreamFailure = UpstreamTimeout("The model took too long to answer. Try again.")
    elif isinstance(error, anthropic.APIStatusError):
        kind = getattr(error, "type", None) or _error_type(error.body)
        failure = failure_for(kind, error.status_code, _retry_after(error.response))
    elif isinstance(
        error,
        anthropic.APIConnectionError | httpx2.HTTPError | aiohttp.ClientError | ConnectionError,
    ):
        failure = UpstreamUnavailable("The connection to the model was lost. Try again.")
    else:
        failure = UpstreamError("The model's answer could not be read.")
    failure.upstream_status = getattr(error, "status_code", None)
    failure.request_id = getattr(error, "request_id", None)
    return failure


def _error_type(body: object) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("type"), str):
            return str(inner["type"])
    return None


def _retry_after(response: httpx2.Response | None) -> float | None:
    if response is None:
        return None
    raw = response.headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None
