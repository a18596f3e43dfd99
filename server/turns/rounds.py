"""The rounds of one turn: model requests, and the tools they ask for, until an answer.

A turn is one `turn_id` and one assistant message however many requests it
takes. When the model stops with `tool_use`, the tools it asked for run (in
parallel, each under its own time-out), their results are sent back, and
the model is asked again; `pause_turn` (a long server-side step) is
continued the same way. Both count against MAX_TOOL_ROUNDS. Every block
lands in the turn's `Answer` as it completes, so checkpoints, snapshots and
the ending always hold the rounds so far.

The per-token path stays what it was: one publish and one integer increment
per text chunk, no object built, nothing written.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server.config import Settings
from server.metrics import Metrics
from server.model.base import (
    Billed,
    Citation,
    ContextMessage,
    Finished,
    Model,
    ServerToolResult,
    TextChunk,
    ThinkingChunk,
    ToolCall,
)
from server.storage.conversations import Store
from server.tools.registry import ToolContext
from server.tools.runner import ToolResult, cancelled, not_run
from server.tools.toolbox import ToolBox
from server.turns import endings
from server.turns.context import answer_messages

if TYPE_CHECKING:
    from server.turns.active import ActiveTurn

YIELD_EVERY_CHUNKS = 32
CONTINUED = {"tool_use", "pause_turn"}  # stop reasons that mean "ask again"


@dataclass(frozen=True, slots=True)
class Answered:
    usage: dict[str, Any]  # the `USAGE_FIELDS` summed over the rounds, and `cost_usd`
    stop_reason: str | None


class Rounds:
    def __init__(
        self,
        settings: Settings,
        model: Model,
        store: Store,
        tools: ToolBox,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._model = model
        self._store = store
        self._tools = tools
        self._metrics = metrics

    async def run(self, active: ActiveTurn, question: list[ContextMessage]) -> Answered:
        """Ask, run tools, ask again, until the model stops for another reason or the limit."""
        spending = active.spending
        continued = 0
        while True:
            messages = question + answer_messages(active.progress().blocks)
            finished, calls = await self._stream(active, messages)
            spending.round_finished(finished.usage())
            usage = spending.finished
            log = active.log
            active.answer.add(finished.content, seq=log.last_seq, text_end=log.text_length)
            stop = finished.stop_reason
            if stop not in CONTINUED:
                return self._answered(active, usage, stop)
            ours = [call for call in calls if not call.server]
            if continued >= self._settings.max_tool_rounds:
                # Answered anyway, so the stored history stays valid for the next turn.
                limit = f"Not run: this answer reached its limit of {continued} tool rounds."
                self._record(active, [not_run(call, limit) for call in ours])
                return self._answered(active, usage, stop)
            if ours:
                await self._run_tools(active, ours)
            continued += 1

    def _answered(self, active: ActiveTurn, usage: dict[str, int], stop: str | None) -> Answered:
        return Answered(self.priced(active, usage), stop)

    def priced(self, active: ActiveTurn, usage: dict[str, int]) -> dict[str, Any]:
        """The usage with its `cost_usd` at this model's prices."""
        price = self._settings.prices.of(active.record.model)
        long_ttl = self._settings.prompt_cache and self._settings.prompt_cache_ttl == "1h"
        return {**usage, "cost_usd": price.cost_usd(usage, long_ttl=long_ttl)}

    def spent_so_far(self, active: ActiveTurn) -> dict[str, Any] | None:
        """What an unfinished answer was billed for (`turns/spending.py`), priced."""
        usage = active.spending.so_far()
        return None if usage is None else self.priced(active, usage)

    async def _stream(
        self, active: ActiveTurn, messages: Sequence[ContextMessage]
    ) -> tuple[Finished, list[ToolCall]]:
        record, publish = active.record, active.log.publish
        chunks = self._model.stream(
            model=record.model,
            system=active.system_prompt,
            messages=messages,
            max_tokens=self._settings.max_output_tokens,
            tools=self._tools.specs(),
            thinking_budget=active.thinking_budget,
        )
        finished = Finished(0, 0, None)
        calls: list[ToolCall] = []
        first_block = active.answer.count  # this round's blocks follow the answer's so far
        async with contextlib.aclosing(chunks):  # closing it closes the upstream request
            count = 0
            async for chunk in chunks:
                if type(chunk) is TextChunk:
                    if active.first_token_at is None:
                        active.first_token_at = time.monotonic()
                        self._metrics.first_token_seconds.observe(
                            active.first_token_at - active.started_at
                        )
                    publish("turn.delta", {"text": chunk.text})
                    active.spending.relayed(chunk.text)
                    self._metrics.tokens_relayed += 1
                elif type(chunk) is ThinkingChunk:
                    publish("turn.thinking", {"text": chunk.text})
                    active.spending.relayed(chunk.text)
                elif isinstance(chunk, ToolCall):
                    calls.append(chunk)
                    payload = endings.tool_call(
                        chunk.id, chunk.name, chunk.input, server=chunk.server
                    )
                    publish("turn.tool_call", payload)
                elif isinstance(chunk, ServerToolResult):
                    publish("turn.tool_result", endings.server_tool_result(chunk.block))
                elif isinstance(chunk, Citation):
                    cited = endings.citation(first_block + chunk.index, chunk.citation)
                    publish("turn.citation", cited)
                elif isinstance(chunk, Billed):
                    active.spending.round_started(chunk.usage)
                elif isinstance(chunk, Finished):
                    finished = chunk
                count += 1
                if count % YIELD_EVERY_CHUNKS == 0:
                    # A burst of buffered chunks is parsed without a suspension
                    # point: let other users' frames through now and then.
                    await asyncio.sleep(0)
        return finished, calls

    async def _run_tools(self, active: ActiveTurn, calls: list[ToolCall]) -> None:
        """Run the calls in parallel; a cancel stops the running ones and records them cancelled."""
        record = active.record
        identity, turn_id = record.identity, record.turn_id

        async def search(query: str, limit: int) -> list[dict[str, Any]]:
            return await self._store.search_messages(
                identity, query, limit=limit, exclude_turn_id=turn_id
            )

        context = ToolContext(identity, turn_id, search)
        results: dict[str, ToolResult] = {}

        async def one(call: ToolCall) -> None:
            result = await self._tools.run(
                call,
                context,
                seconds=self._settings.tool_timeout_seconds,
                max_chars=self._settings.tool_output_max_chars,
            )
            results[call.id] = result
            self._publish(active, result)

        tasks = [asyncio.create_task(one(call), name=f"tool:{call.name}") for call in calls]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()  # a no-op for the finished ones
            for call in calls:
                if call.id not in results:
                    results[call.id] = cancelled(call)
                    self._publish(active, results[call.id])
            self._add(active, [results[call.id] for call in calls])

    def _record(self, active: ActiveTurn, results: list[ToolResult]) -> None:
        for result in results:
            self._publish(active, result)
        self._add(active, results)

    @staticmethod
    def _add(active: ActiveTurn, results: list[ToolResult]) -> None:
        log = active.log
        active.answer.add([r.block() for r in results], seq=log.last_seq, text_end=log.text_length)

    @staticmethod
    def _publish(active: ActiveTurn, result: ToolResult) -> None:
        active.log.publish(
            "turn.tool_result", endings.tool_result(result.block(), result.call.name)
        )
