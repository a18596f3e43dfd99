"""Fix 6: a write is not followed by a change-stream dispatch when nobody watches.

After every committed write, mongoeco hands the collection's change-stream
hub the changes from its SQLite outbox: it takes a consumer lease (a write
and a commit), starts a heartbeat thread, reads and checkpoints the outbox (a
commit), joins the thread and releases the lease (a commit). Under 200 turns
starting at once that was 8.5 of the database process's 13.4 s (cProfile,
`EMBEDDED_DATABASE_PROFILE`), for a hub with no watcher: the service never
opens a change stream (Redis carries its pushes). The hub says whether it
would publish (`should_publish_events`: a watcher, or a journal); when it
would not, the dispatch is skipped. The changes stay in the outbox, which
mongoeco compacts to its bound (10,000 entries) on every append, and a
watcher that arrives later is dispatched to as before.
"""

from __future__ import annotations

from typing import Any

PATCHED = "dispatch_committed_changes"


def apply() -> None:
    from mongoeco.engines.adapter import EngineSpiAdapter

    adapter: Any = EngineSpiAdapter
    dispatch = adapter.dispatch_committed_changes

    def dispatch_if_watched(self: Any, sink: object | None) -> None:
        would_publish = getattr(sink, "should_publish_events", None)
        if callable(would_publish) and not would_publish():
            return
        dispatch(self, sink)

    adapter.dispatch_committed_changes = dispatch_if_watched
