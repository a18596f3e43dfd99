"""Runs one stdio MCP server as its child and takes it down if the service dies.

`python -I guard.py SERVICE_PID COMMAND [ARGS...]`. Standard library only, run
as a file, so it starts fast and imports nothing of the service.

On a clean shutdown the SDK closes the server's stdin and, if it lingers,
signals its process group; nothing here is needed. On a SIGKILL of the service
nobody runs that code: a well-behaved server sees stdin EOF and exits, but a
launcher (`npx`, `uvx`, a shell script) may leave its real server running, and
a server busy in a tool may not read stdin for a long time. The guard notices
its parent is gone (the pid it was given is no longer its parent) and
terminates the server and everything it started: the SDK makes the guard a
process-group leader, so the group is exactly that tree. When the server exits
on its own (the clean path), what it started and left behind is sent SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

POLL_SECONDS = 0.2
GRACE_SECONDS = 2.0


def main(argv: list[str]) -> int:
    parent, command = int(argv[0]), argv[1:]
    if os.getppid() != parent:
        return 1  # the service died before we started
    child = subprocess.Popen(command)
    _release_pipes()
    while True:
        try:
            code = child.wait(POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            pass
        if os.getppid() != parent:
            code = 1
            break
    # Whatever the server started and left behind goes with it; if the service died,
    # the server itself too, by force if it will not stop.
    _take_down(child, force=os.getppid() != parent)
    return code


def _release_pipes() -> None:
    """Hold no copy of the service's pipes: EOF must travel only between service and server."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)


def _take_down(child: subprocess.Popen[bytes], *, force: bool) -> None:
    """SIGTERM the server and its descendants; SIGKILL after a grace period if `force`."""
    leader = os.getpgrp() == os.getpid()  # never signal a group we do not own
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _signal(child, leader, signal.SIGTERM)
    if force:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(GRACE_SECONDS)
        _signal(child, leader, signal.SIGKILL)  # stragglers; as the leader, the guard goes too


def _signal(child: subprocess.Popen[bytes], leader: bool, signum: int) -> None:
    try:
        if leader:
            os.killpg(os.getpgrp(), signum)
        else:
            child.send_signal(signum)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
