"""One turn's event log, read by any number of followers.

The log is what makes detach and resume work: the turn publishes into it
whether or not anyone listens; a follower reads from any `seq`. It holds a
bounded window of events plus the whole answer text, so memory per turn is
bounded by the answer's length, and a follower that falls behind (a slow
socket) is sent the text it missed as one merged delta instead of being
buffered for without limit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from server.events import EventType, TurnEvent, merge_deltas

DEFAULT_WINDOW = 256


class TurnLog:
    def __init__(
        self,
        turn_id: str,
        snapshot: Callable[[str, int], dict[str, Any]],
        *,
        window: int = DEFAULT_WINDOW,
        mirror: Callable[[TurnEvent], None] | None = None,
    ) -> None:
        self.turn_id = turn_id
        # Told every event as it is published, synchronously (the cluster's stream
        # publisher, which only queues it): other processes' followers read it there.
        self._mirror = mirror
        # Builds the message object for turn.snapshot from the text and seq it stands for.
        self._snapshot = snapshot
        self._events: deque[TurnEvent] = deque(maxlen=window)
        self._parts: list[str] = []
        self._text_length = 0
        self._last_seq = 0
        self._started: TurnEvent | None = None
        # Events other than text (thinking, tools) were published: a follower that
        # fell behind the window cannot be caught up with text alone.
        self._rich = False
        self.terminal: TurnEvent | None = None
        # Followers waiting for the next event: one future each, woken by `publish`
        # (cheaper per token than an `asyncio.Event` made anew for every event).
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def text(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def text_length(self) -> int:
        return self._text_length

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def publish(self, type_: EventType, payload: dict[str, Any]) -> TurnEvent:
        if self.terminal is not None:
            raise RuntimeError(f"turn {self.turn_id} already ended with {self.terminal.type}")
        self._last_seq += 1
        event = TurnEvent(type_, self.turn_id, self._last_seq, payload, offset=self._text_length)
        if type_ == "turn.started":
            self._started = event
        elif type_ == "turn.delta":
            text: str = payload["text"]
            self._parts.append(text)
            self._text_length += len(text)
        elif event.terminal:
            self.terminal = event
        else:
            self._rich = True
        self._events.append(event)
        if self._mirror is not None:
            self._mirror(event)
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():  # not cancelled with its follower
                    waiter.set_result(None)
        return event

    async def follow(self, after_seq: int = 0) -> AsyncIterator[TurnEvent]:
        """Events after `after_seq`, then live ones, until the terminal event.

        Where the events after `after_seq` are no longer held (or never were:
        a seq beyond the last), one `turn.snapshot` with the whole text so far
        stands in for them. A follower that already has the terminal event is
        sent it again, so that every follow ends with it. Consecutive deltas
        waiting for a slow reader are merged into one.
        """
        if self.terminal is not None and after_seq >= self.terminal.seq:
            yield self.terminal
            return
        cursor = after_seq
        sent_up_to: int | None = None  # text offset the follower has; None: unknown
        if cursor == 0 and self._started is not None:
            yield self._started
            cursor, sent_up_to = self._started.seq, 0
        while True:
            pending = self._after(cursor)
            if pending is None:  # evicted from the window, or never reached
                if sent_up_to is None or self._rich:
                    seq = self._last_seq - (1 if self.terminal is not None else 0)
                    yield self._snapshot_event(seq)
                else:
                    seq, end = self._events[0].seq - 1, self._events[0].offset
                    text = self.text[sent_up_to:end]
                    yield TurnEvent("turn.delta", self.turn_id, seq, {"text": text}, sent_up_to)
                cursor, sent_up_to = seq, self._offset_after(seq)
                continue
            if not pending:  # the terminal event, when it comes, is among the pending
                # No await since `_after`: nothing can have been published meanwhile.
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter
                continue
            for event in merge_deltas(pending):
                yield event
                if event.terminal:
                    return
                cursor = event.seq
                sent_up_to = event.offset
                if event.type == "turn.delta":
                    sent_up_to += len(event.payload["text"])

    def _after(self, seq: int) -> list[TurnEvent] | None:
        """The held events after `seq`; None when they are not held."""
        if seq == self._last_seq:
            return []
        if seq > self._last_seq:  # a position this turn has not reached
            return None
        first = self._events[0].seq
        if seq + 1 < first:
            return None
        # From the right end: a follower that keeps up wants the last event or two,
        # and copying the whole window for each would cost O(window) per token.
        events = self._events
        return [events[i] for i in range(seq - self._last_seq, 0)]

    def _offset_after(self, seq: int) -> int:
        """The text offset once every event up to `seq` is applied."""
        following = self._after(seq)
        return following[0].offset if following else self._text_length

    def _snapshot_event(self, seq: int) -> TurnEvent:
        text = self.text[: self._offset_after(seq)]
        message = self._snapshot(text, seq)
        return TurnEvent("turn.snapshot", self.turn_id, seq, {"message": message})
