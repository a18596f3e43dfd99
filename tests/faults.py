"""Faults injected in the real database server, never in our code.

`configureFailPoint`/`failCommand` is MongoDB's own test hook (a real mongod
needs `enableTestCommands=1`; the embedded mongoeco server always has it): the
next matching commands fail on the server, so the service meets a genuine
`OperationFailure` through the real driver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.errors import OperationFailure

# Not in the driver's retryable set: the service sees every injected failure.
INJECTED_ERROR_CODE = 8


async def fail_commands(db: Any, collection: str, commands: list[str], *, times: int) -> None:
    """The next `times` of these commands on `db.collection` fail on the server."""
    data = {
        "failCommands": commands,
        "errorCode": INJECTED_ERROR_CODE,
        "errorMessage": f"injected failure of {'/'.join(commands)} on {collection}",
        "namespace": f"{db.name}.{collection}",
    }
    try:
        await db.client.admin.command(
            {"configureFailPoint": "failCommand", "mode": {"times": times}, "data": data}
        )
    except OperationFailure as error:
        pytest.skip(f"the database server has no failCommand fail point: {error}")


async def clear_faults(db: Any) -> None:
    await db.client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


class DatabaseFaults:
    """Fail points on the test's database server, all cleared when the test ends."""

    def __init__(self, db: Any) -> None:
        self.db = db

    async def fail(self, collection: str, commands: list[str], *, times: int) -> None:
        await fail_commands(self.db, collection, commands, times=times)

    async def clear(self) -> None:
        await clear_faults(self.db)


@pytest.fixture
async def faults(service: Any) -> AsyncIterator[DatabaseFaults]:
    injected = DatabaseFaults(service.db)
    yield injected
    await clear_faults(service.db)
