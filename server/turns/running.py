"""The caller's running turns, in every process: what a device back from sleep may resume.

Which turns run is storage's to say (the `turns` collection, by owner and status),
never one process's memory. How far each has got (`last_seq`) is best known by
the process running it; for a turn elsewhere, by its Redis stream's newest entry;
without Redis, by the `seq` its last checkpoint saved with the answer.
"""

from __future__ import annotations

from typing import Any

from server.cluster.cluster import Cluster
from server.identity import Identity
from server.storage.changes import ChangeStore
from server.sync.changes import running_turn
from server.turns.held import HeldTurns


async def running_turns(
    identity: Identity, changes: ChangeStore, held: HeldTurns, cluster: Cluster | None
) -> list[dict[str, Any]]:
    docs = await changes.running_turns(identity)
    seqs: dict[str, int] = {}
    elsewhere = []
    for doc in docs:
        active = held.get(identity, str(doc["turn_id"]))
        if active is not None:
            seqs[active.record.turn_id] = active.log.last_seq
        else:
            elsewhere.append(doc)
    if elsewhere and cluster is not None:
        seqs |= await cluster.last_seqs(identity, [str(d["turn_id"]) for d in elsewhere])
    unknown = [d for d in elsewhere if d["turn_id"] not in seqs]
    if unknown:
        checkpointed = await changes.checkpointed_seqs(
            [str(d["assistant_message_id"]) for d in unknown]
        )
        for doc in unknown:
            # `turn.started` at least: a turn in storage has published it.
            seqs[doc["turn_id"]] = max(1, checkpointed.get(doc["assistant_message_id"], 0))
    return [
        running_turn(
            doc["turn_id"], doc["conversation_id"], doc["created_at"], seqs[doc["turn_id"]]
        )
        for doc in docs
    ]
