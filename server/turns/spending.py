"""What a turn has been billed for so far, ended or not.

An answer that is cancelled, interrupted or fails mid-stream was still billed:
its request's input (and cache) as `message_start` reported it, and the output
generated before it stopped. The API reports the output only at the end of a
request, so for an unfinished one it is estimated from what was relayed. Stored
on the answer like a finished one's, it counts toward the conversation's totals,
`/api/usage` and the daily budgets: cancelling is not a way around them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.prices import USAGE_FIELDS

CHARS_PER_TOKEN = 4  # the estimate's rule (turns/context.py)


@dataclass(slots=True)
class Spending:
    finished: dict[str, int] = field(default_factory=lambda: dict.fromkeys(USAGE_FIELDS, 0))
    billed: dict[str, int] | None = None  # the request in flight, as message_start said
    streamed_chars: int = 0  # its text and thinking relayed so far

    def round_started(self, usage: dict[str, int]) -> None:
        self.billed = dict(usage)

    def relayed(self, text: str) -> None:
        self.streamed_chars += len(text)

    def round_finished(self, usage: dict[str, int]) -> None:
        for name, count in usage.items():
            self.finished[name] += count
        self.billed, self.streamed_chars = None, 0

    def so_far(self) -> dict[str, int] | None:
        """Every round's usage, the one in flight with its output estimated; None if nothing
        was billed or relayed (a turn that stopped before its first request answered)."""
        total = dict(self.finished)
        output = (self.streamed_chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN
        if self.billed is not None:
            for name, count in self.billed.items():
                total[name] += count
            total["output_tokens"] += max(output - self.billed.get("output_tokens", 0), 0)
        else:
            total["output_tokens"] += output
        return total if any(total.values()) else None
