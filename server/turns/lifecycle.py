"""A begun turn's life: its task, the model's rounds, and its one ending.

The engine decides whether a turn may start and claims it (`engine.py`,
`starting.py`); from the claimed record on, everything a turn does happens
here: the task that runs it, the history it is answered from, and the single
finaliser every ending goes through (complete, cancelled, interrupted,
error), which stores the outcome before any follower is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field

from server.cluster.cluster import Cluster
from server.config import Settings
from server.errors import DomainError, InternalError, UpstreamFailure
from server.files.blocks import inline_attachments
from server.files.store import FileStore
from server.identity import Identity
from server.limits import TurnSlot
from server.metrics import Metrics
from server.storage.conversations import Store, public_message
from server.storage.turn_records import INTERRUPTED, Ending, Outcome, Progress, TurnRecord
from server.storage.turns import TurnStore
from server.sync.changes import conversation_changed
from server.sync.feed import ChangeFeed
from server.turns import endings
from server.turns.active import ActiveTurn
from server.turns.answer import Answer
from server.turns.checkpoints import Checkpointer
from server.turns.context import build_context
from server.turns.counting import TokenCounter
from server.turns.failures import log_failure
from server.turns.held import HeldTurns
from server.turns.journal import EndingJournal
from server.turns.log import TurnLog
from server.turns.rounds import Rounds
from server.turns.starting import StartPlan
from server.turns.storing import store_ending
from server.turns.titles import Titler

log = logging.getLogger(__name__)

HISTORY_LIMIT = 200
FAILED = Outcome("error", error=InternalError().describe())


@dataclass
class TurnLife:
    settings: Settings
    store: Store
    turns: TurnStore
    files: FileStore
    rounds: Rounds
    checkpoints: Checkpointer
    metrics: Metrics
    held: HeldTurns
    feed: ChangeFeed
    titler: Titler
    counter: TokenCounter
    closing: asyncio.Event
    cluster: Cluster | None
    journal: EndingJournal | None = None
    # Conversations whose turn was acknowledged cancelled from the journal and is being
    # stored: a next turn in one waits for it (its slot is freed by that store).
    storing: dict[str, asyncio.Future[Ending]] = field(default_factory=dict)

    async def stored(self, conversation_id: str | None) -> None:
        """Once this process's ending in `conversation_id`, if one is being stored, is."""
        pending = self.storing.get(conversation_id) if conversation_id else None
        if pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)

    def launch(
        self,
        identity: Identity,
        record: TurnRecord,
        plan: StartPlan,
        slot: TurnSlot,
        origin: str | None,
    ) -> ActiveTurn:
        """The claimed turn held and running; `turn.started` is its first event."""
        answer = Answer()
        turn_log = TurnLog(
            record.turn_id,
            lambda text, seq: public_message(
                record.assistant_document(text, blocks=answer.blocks(text, seq))
            ),
            mirror=(
                self.cluster.mirror(identity, record.turn_id) if self.cluster is not None else None
            ),
        )
        active = ActiveTurn(
            record, plan.content, plan.system_prompt, plan.thinking_budget, answer, turn_log
        )
        active.slot, active.origin = slot, origin
        active.attachments = plan.attachments
        self.held.add(active)
        active.log.publish("turn.started", endings.started(record.turn_document()))
        # Started eagerly, so that `_run` is inside its try/finally before anyone
        # can cancel it: a task cancelled before its first step never runs its
        # coroutine, and the turn would never end (a cancel sent right after the start).
        active.task = asyncio.Task(
            self._run(active),
            loop=asyncio.get_running_loop(),  # Python 3.13.0 needs it given with eager_start
            name=f"turn:{record.turn_id}",
            eager_start=True,
        )
        active.task.add_done_callback(slot.release_soon)
        return active

    async def _run(self, active: ActiveTurn) -> None:
        record = active.record
        outcome = FAILED  # until the turn says otherwise
        self.checkpoints.track(active)
        try:
            if active.attachments:  # marked once the message that uses them is stored
                file_ids = [str(block["file_id"]) for block in active.attachments]
                await self.files.mark_used(file_ids, record.conversation_id)
            # The branch above the question, never a sibling: one read by `_id`s
            # (none for a first question), however many branches the conversation has.
            history = await self.store.tree.by_ids(record.ancestors[-HISTORY_LIMIT:])
            messages = build_context(
                history,
                active.content,
                active.system_prompt,
                self.settings.context_token_budget,
                active.attachments,
            )
            messages = await inline_attachments(messages, self.files, record.identity)
            answered = await self.rounds.run(active, messages)
            outcome = Outcome("complete", usage=answered.usage, stop_reason=answered.stop_reason)
        except asyncio.CancelledError:
            outcome = (
                Outcome("cancelled")
                if active.cancel_requested
                else Outcome("interrupted", error=INTERRUPTED)
            )
            raise
        except DomainError as error:
            outcome = Outcome("error", error=error.describe())
            log_failure(record, error)
            if isinstance(error, UpstreamFailure):
                self.metrics.upstream_errors.labels(error.code).inc()
        except Exception:
            log.exception("turn %s failed", record.turn_id)
            outcome = FAILED
        finally:
            self.checkpoints.untrack(active)
            if outcome.usage is None:  # stopped or failed: billed all the same
                outcome = dataclasses.replace(outcome, usage=self.rounds.spent_so_far(active))
            # The ending runs as its own task: a second cancel (shutdown during a
            # user's cancel) only stops this await, never the one finaliser.
            active.ending = asyncio.create_task(self._finalise(active, outcome))
            await asyncio.shield(active.ending)

    async def _finalise(self, active: ActiveTurn, outcome: Outcome) -> None:
        """The one ending of every turn: store it, then tell the followers (a cancel the
        store is slow with is told first, once journaled: `_told_from_journal`)."""
        if active.slot is not None:
            # The model is done with: its places are free before the ending is stored
            # or told, so a next turn started on the terminal event finds them.
            await active.slot.release()
        record, progress = active.record, active.progress()
        text = progress.text
        final_seq = active.log.last_seq + 1
        storing = asyncio.ensure_future(
            store_ending(self.turns, record, progress, outcome, final_seq, closing=self.closing)
        )
        told = await self._told_from_journal(active, storing, progress, outcome, final_seq)
        ending = await storing
        self.storing.pop(record.conversation_id, None)
        if self.journal is not None and ending.stored:
            self.journal.settle(record.id)
        if not told:
            kind, payload = endings.ending(ending.turn, ending.message)
            active.log.publish(kind, payload)
        status = str(ending.turn["status"])
        self.metrics.turn_seconds.labels(status).observe(time.monotonic() - active.started_at)
        active.done.set()
        self.held.finished(active)
        if ending.conversation is not None:  # it moved up the list: other devices see it
            changed = conversation_changed(record.identity, ending.conversation, active.origin)
            self.feed.publish(changed)
        answered = ending.ours and (outcome.status == "complete" or bool(text.strip()))
        if record.new_conversation and self.settings.titles_enabled and answered:
            self.titler.title_later(record.conversation_id, active.content, text)
        if answered:  # the next turns trim history by these counts
            question = {
                "_id": record.user_message_id,
                "role": "user",
                "content": active.content,
                "blocks": active.attachments or None,
            }
            asked = [] if record.regenerate_of else [question]  # a regenerate asks nothing new
            self.counter.count_later(record.model, [*asked, ending.message])

    async def _told_from_journal(
        self,
        active: ActiveTurn,
        storing: asyncio.Future[Ending],
        progress: Progress,
        outcome: Outcome,
        final_seq: int,
    ) -> bool:
        """Acknowledge a cancel before its ending is stored, if the store is slow: once the
        ending is in the journal (turns/journal.py). False: told as usual, once stored."""
        if outcome.status != "cancelled" or self.journal is None:
            return False
        await asyncio.wait({storing}, timeout=self.settings.cancel_ack_seconds)
        if storing.done():
            return False
        record = active.record
        entry = {
            "key": record.id,
            **record.identity.scope,
            "turn_id": record.turn_id,
            "status": outcome.status,
            "content": progress.text,
            "blocks": progress.blocks,
            "usage": outcome.usage,
            "stop_reason": outcome.stop_reason,
            "final_seq": final_seq,
        }
        try:
            await self.journal.append(record.id, entry)
        except OSError as error:  # told once stored, as without a journal
            log.warning("could not journal the end of turn %s: %s", record.turn_id, error)
            return False
        self.storing[record.conversation_id] = storing
        answer = record.ended_answer(progress, outcome)
        kind, payload = endings.ending({"status": outcome.status}, answer)
        active.log.publish(kind, payload)
        return True
