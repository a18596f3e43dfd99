"""The stamp carried by every token, and the prompt that tells the fake what to stream.

Each text delta the fake upstream sends reads `<index>@<µs> `: the token's
index in its stream and the moment the fake wrote it, in microseconds of
CLOCK_MONOTONIC, which every process on one Linux host shares. The service
relays text verbatim (merging deltas for a reader that falls behind), so a
client finds every stamp in whatever frames it gets and subtracts it from
its own clock: that is the token's latency. The first delta also carries
`<µs>`, when the fake received the request, for the time to first token.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

PROMPT_PREFIX = "bench-stream"
TOKEN = re.compile(r"(\d+)@(\d+) ")
REQUEST_ARRIVAL = re.compile(r"<(\d+)> ")


def now_us() -> int:
    """CLOCK_MONOTONIC in microseconds: comparable across processes on this host."""
    return time.monotonic_ns() // 1000


def token_text(index: int, stamp_us: int) -> str:
    return f"{index}@{stamp_us} "


def arrival_text(arrival_us: int) -> str:
    return f"<{arrival_us}> "


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What one request asks the fake for, carried in the user message.

    `barrier`: the fake holds the tokens of a run until that many of its
    requests have arrived, so that all streams of a workload are live at once
    however long the service takes to start them. `rate` 0 means unpaced.
    """

    run: str
    key: str
    tokens: int
    rate: float
    barrier: int = 0
    endless: bool = False

    def prompt(self) -> str:
        return (
            f"{PROMPT_PREFIX} run={self.run} key={self.key} tokens={self.tokens} "
            f"rate={self.rate} barrier={self.barrier} endless={int(self.endless)}"
        )

    @classmethod
    def from_prompt(cls, text: str) -> StreamSpec | None:
        if not text.startswith(PROMPT_PREFIX):
            return None
        fields = dict(part.split("=", 1) for part in text.split()[1:] if "=" in part)
        try:
            return cls(
                run=fields["run"],
                key=fields["key"],
                tokens=int(fields["tokens"]),
                rate=float(fields["rate"]),
                barrier=int(fields["barrier"]),
                endless=fields["endless"] == "1",
            )
        except (KeyError, ValueError):
            return None
