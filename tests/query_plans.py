"""Whether a read's plan is served by an index, on MongoDB and on the embedded database.

MongoDB's planner names the winning index (`IXSCAN`) and any in-memory `SORT`.
mongoeco, the embedded database, answers `explain` with SQLite's own plan
(`details.engine_details`): a `SEARCH documents USING INDEX ... (<expr>=? ...)`
is one of its expression indexes searched by the filter's fields
(server/storage/embedded_fixes/narrowing.py); a bare `(db_name=? AND
coll_name=?)` is a scan of the collection.
"""

from __future__ import annotations

from typing import Any


def index_use(plan: dict[str, Any], index: str) -> str | None:
    """None if `plan` is served by `index` (on MongoDB, without an in-memory sort), else why not."""
    if "queryPlanner" in plan:
        winning = str(plan["queryPlanner"]["winningPlan"])
        if "IXSCAN" in winning and index in winning and "'SORT'" not in winning:
            return None
        return winning
    engine = " ".join(map(str, plan.get("details", {}).get("engine_details", [])))
    if "USING INDEX" in engine and "<expr>" in engine:
        return None
    return engine or str(plan)
