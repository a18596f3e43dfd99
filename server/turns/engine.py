"""The turn engine: the one place where a turn lives, from request to terminal event.

A turn runs as a task owned by the engine, not by the socket that asked for
it: a client that goes away only stops following it (unless ON_DISCONNECT is
`cancel`), and the answer is still finished and stored. Transports call
`start`, `resume` and `cancel` and relay the `TurnEvent`s they get back; a
claimed turn's own life (its task and its one ending) is `lifecycle.py`'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from server.cluster.cluster import Cluster
from server.config import Settings
from server.errors import (
    Conflict,
    Limited,
    NotFound,
    ShuttingDown,
    TurnNotRunning,
)
from server.events import TurnEvent
from server.files.blocks import keep_attachments
from server.files.store import FileStore
from server.identity import Identity
from server.limits import Limits
from server.metrics import Metrics
from server.model.base import Model
from server.schemas import TurnStart
from server.storage.changes import ChangeStore
from server.storage.conversations import Store
from server.storage.deadline import StorageDeadline
from server.storage.turn_records import RUNNING, Lease, TurnExists
from server.storage.turns import TurnStore
from server.sync.changes import (
    conversation_changed,
    conversation_deleted,
    running_turn,
    turn_running,
)
from server.sync.feed import ChangeFeed
from server.tools.toolbox import ToolBox
from server.turns.active import ActiveTurn
from server.turns.checkpoints import Checkpointer
from server.turns.counting import TokenCounter
from server.turns.elsewhere import cancel_elsewhere, follow_elsewhere
from server.turns.failures import guarded
from server.turns.held import HeldTurns
from server.turns.journal import JOURNAL_DIR, EndingJournal, replay
from server.turns.lifecycle import TurnLife
from server.turns.refusals import RefusedStarts
from server.turns.replay import StoredTurns
from server.turns.rounds import Rounds
from server.turns.running import running_turns
from server.turns.shutdown import drain_turns
from server.turns.starting import check_message, plan_start
from server.turns.titles import Titler

log = logging.getLogger(__name__)


class TurnEngine:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        turns: TurnStore,
        model: Model,
        metrics: Metrics,
        tools: ToolBox,
        limits: Limits,
        cluster: Cluster | None = None,
        feed: ChangeFeed | None = None,
        files: FileStore | None = None,
        deadline: StorageDeadline | None = None,
    ) -> None:
        self._settings = settings
        # A start's, a resume's and a cancel's database work: answered within seconds.
        self._deadline = deadline or StorageDeadline(settings.storage_timeout_seconds, store.ping)
        # Attachments: claimed at a start, read back into each request, gone with their chat.
        self._files = files if files is not None else FileStore(store.db)
        # Every device of a user is told of the conversations a turn touches (`sync/`).
        self._feed = feed if feed is not None else ChangeFeed()
        self._changes = ChangeStore(store.db)
        # Redis (REDIS_URL): turns followed and cancelled live across processes.
        self._cluster = cluster
        self._limits = limits
        self._store = store
        self._turns = turns
        self._stored_turns = StoredTurns(turns, interval=settings.checkpoint_interval_seconds)
        self._refusals = RefusedStarts(limits, turns, self._stored_turns)
        self._model = model
        self._metrics = metrics
        self._held = HeldTurns(
            retention_seconds=settings.turn_retention_seconds,
            retention_max=settings.turn_retention_max,
        )
        self._closing = asyncio.Event()
        self._draining = False
        self._titler = Titler(
            model,
            store,
            on_titled=lambda doc: self._feed.publish(conversation_changed(_owner(doc), doc)),
        )
        counting = model if settings.token_counting == "api" else None
        self._counter = TokenCounter(counting, store.db["messages"], tools)
        self._checkpoints = Checkpointer(
            turns,
            interval=settings.checkpoint_interval_seconds,
            lease_seconds=settings.turn_lease_seconds,
            on_lease=self._lease_changed,
        )
        self._life = TurnLife(
            settings,
            store,
            turns,
            self._files,
            Rounds(settings, model, store, tools, metrics),
            self._checkpoints,
            metrics,
            self._held,
            self._feed,
            self._titler,
            self._counter,
            self._closing,
            cluster,
            journal=_open_journal(settings.data_dir / JOURNAL_DIR, turns.owner),
        )
        if cluster is not None:
            cluster.cancels.listen(self._cancel_sent)

    @property
    def running_turns(self) -> int:
        return len(self._held.running())

    @property
    def held_turns(self) -> int:
        """Turns whose events this process holds in memory: running, or recently finished."""
        return len(self._held)

    async def start(
        self, identity: Identity, request: TurnStart, *, origin: str | None = None
    ) -> AsyncIterator[TurnEvent]:
        """Validate and begin a turn (or replay a finished one); follow it from the start.

        Raises domain errors before anything is streamed, so the HTTP transport
        can still answer with a status code. `origin`: the socket that asked, which
        the pushes to the user's other devices leave out (it has `turn.started`).
        """
        if self._draining:
            raise ShuttingDown()
        check_message(self._settings, request)
        active = self._held.get(identity, request.turn_id)
        if active is not None and not active.done.is_set():
            raise Conflict(f"Turn {request.turn_id!r} is still running; resume it instead")
        # No read first: claiming the turn id (in `begin`) returns the stored turn if
        # there is one, and a replay is served from that. A user its limits would
        # refuse is the exception: told from memory, looked up one start at a time.
        async with self._deadline():  # the start's reads and claims; the turn's are its own
            refused = await self._refusals.replay_if_refused(identity, request.turn_id)
            if refused is not None:
                return refused
            # A cancel told before stored (turns/journal.py) frees the slot when stored.
            await self._life.stored(request.conversation_id)
            plan = await plan_start(self._settings, self._store, self._files, identity, request)
            # Taken last: a replay, a refusal or a conflict costs the user nothing.
            try:
                slot = await self._limits.admit_turn(identity)
            except Limited as refusal:  # the limits filled meanwhile: as if refused at first
                return await self._refusals.replay_or_refuse(refusal, identity, request.turn_id)
            try:
                record, conversation = await self._turns.begin(
                    identity,
                    request.turn_id,
                    conversation=plan.conversation,
                    content=plan.content,
                    model=plan.model,
                    new_conversation=plan.new_conversation,
                    placement=plan.placement,
                    attachments=plan.attachments,
                )
            except TurnExists as taken:
                await slot.refund()
                return await self._stored_turns.replay(taken.stored)
            except BaseException:
                await asyncio.shield(slot.refund())
                raise
        active = self._life.launch(identity, record, plan, slot, origin)
        self._feed.publish(conversation_changed(identity, conversation, origin))
        turn = running_turn(record.turn_id, record.conversation_id, record.created_at, 1)
        self._feed.publish(turn_running(identity, turn, conversation, origin))
        return self._follow(active, 0)

    async def resume(
        self, identity: Identity, turn_id: str, after_seq: int
    ) -> AsyncIterator[TurnEvent]:
        """Re-attach to a turn: held events after `after_seq`, else a snapshot; then live ones."""
        active = self._held.get(identity, turn_id)
        if active is not None:
            return self._follow(active, after_seq)
        async with self._deadline():
            doc = await self._turns.find(identity, turn_id)
        if doc is None:
            raise NotFound(f"No turn {turn_id!r}")
        if self._cluster is not None and self._cluster.available:
            events = follow_elsewhere(
                self._cluster,
                doc,
                after_seq,
                reload=lambda: self._turns.find(identity, turn_id),
                from_storage=lambda seq: self._stored_turns.from_storage(identity, turn_id, seq),
            )
            return guarded(turn_id, events)
        async with self._deadline():
            return await self._stored_turns.follow(doc, after_seq=after_seq, replay=False)

    def abandon(self, identity: Identity, turn_id: str) -> None:
        """The client that started this turn is gone (its socket closed, its stream broke).

        Only a gone client counts: a follower replaced by a resume on the same
        socket is not an abandonment."""
        active = self._held.get(identity, turn_id)
        if active is not None and self._settings.on_disconnect == "cancel":
            active.stop(requested=True)

    async def cancel(self, identity: Identity, turn_id: str) -> None:
        """Stop a running turn at once, keeping its partial answer."""
        active = self._held.get(identity, turn_id)
        if active is not None:
            if active.done.is_set():
                raise TurnNotRunning(f"Turn {turn_id!r} has already ended")
            active.stop(requested=True)
            return
        async with self._deadline():
            if self._cluster is not None and await cancel_elsewhere(
                self._cluster, self._turns, identity, turn_id
            ):
                return
            doc = await self._turns.find(identity, turn_id)
            if doc is None:
                raise NotFound(f"No turn {turn_id!r}")
            if doc["status"] == RUNNING and await self._turns.request_cancel(identity, turn_id):
                if self._cluster is not None:  # running elsewhere without a stream: tell it too
                    await self._cluster.cancels.send(identity, turn_id)
                return
        raise TurnNotRunning(f"Turn {turn_id!r} has already ended")

    async def status(self, identity: Identity, turn_id: str) -> dict[str, Any]:
        doc = await self._turns.find(identity, turn_id)
        if doc is None:
            raise NotFound(f"No turn {turn_id!r}")
        return {
            "turn_id": turn_id,
            "status": doc["status"],
            "conversation_id": doc["conversation_id"],
            "assistant_message_id": doc.get("assistant_message_id"),
        }

    async def delete_conversation(self, identity: Identity, conversation_id: str) -> None:
        """Stop the conversation's running turn, if any, then delete it with its messages."""
        for active in self._held.all():
            if (
                active.record.conversation_id == conversation_id
                and active.record.identity == identity
            ):
                active.stop(requested=True)
                await active.done.wait()
        grave = await self._store.delete_conversation(identity, conversation_id)
        await self._files.forget_conversation(conversation_id)
        self._feed.publish(conversation_deleted(identity, grave))

    async def running(self, identity: Identity) -> list[dict[str, Any]]:
        """The caller's running turns in every process (`turns/running.py`)."""
        return await running_turns(identity, self._changes, self._held, self._cluster)

    async def recover(self, *, everything: bool) -> int:
        # Endings acknowledged by processes gone before storing them, before recovery
        # would mark those turns interrupted with their last checkpoint.
        await replay(self._settings.data_dir / JOURNAL_DIR, self._turns.restore)
        recovered = await self._turns.recover(everything=everything)
        await keep_attachments(self._store.db["messages"], self._files, recovered)
        if recovered:
            log.warning("marked %d turn(s) of a stopped process as interrupted", len(recovered))
        return len(recovered)

    async def drain(self, seconds: float) -> None:
        """Shutdown, first step: refuse new turns, let running ones finish for `seconds`.

        Those still running then are stopped through the one finaliser (stored
        `interrupted` with their text, followers told), so that every follower
        has its final event before the transports close their connections."""
        self._draining = True
        running = self._held.running()
        await drain_turns(running, seconds, closing=self._closing)

    async def close(self) -> None:
        """Shutdown: stop running turns (stored as `interrupted`), then background work.

        Titles still being asked for are dropped rather than awaited: a slow
        title request must not hold up a restart for the upstream time-out."""
        self._closing.set()
        actives = [a for a in self._held.all() if a.task is not None]
        for active in actives:
            active.stop(requested=False)
        # `done`, not the tasks: a task cancelled in its ending returns before the
        # shielded ending has written the outcome.
        await asyncio.gather(*(a.done.wait() for a in actives))
        await self._checkpoints.close()
        await self._titler.close()
        await self._counter.close()
        if self._life.journal is not None:
            await self._life.journal.close()

    def _cancel_sent(self, identity: Identity, turn_id: str) -> None:
        """Another process relayed a cancel of one of our turns (Redis Pub/Sub)."""
        active = self._held.get(identity, turn_id)
        if active is not None and not active.done.is_set():
            active.stop(requested=True)

    def _lease_changed(self, active: ActiveTurn, state: Lease) -> None:
        if state == "cancel_requested":
            active.stop(requested=True)
        elif state == "lost":
            turn_id = active.record.turn_id
            log.warning("turn %s was recovered by another process; stopping it", turn_id)
            active.stop(requested=False)

    def _follow(self, active: ActiveTurn, after_seq: int) -> AsyncIterator[TurnEvent]:
        return guarded(active.record.turn_id, active.log.follow(after_seq))


def _owner(doc: dict[str, Any]) -> Identity:
    return Identity(str(doc["tenant_id"]), str(doc["user_id"]))


def _open_journal(directory: Path, name: str) -> EndingJournal | None:
    """This process's ending journal; None (cancels told once stored) if the disk refuses it."""
    try:
        return EndingJournal(directory, name)
    except OSError as error:
        log.warning("no ending journal in %s (%s): a cancel is told once stored", directory, error)
        return None
