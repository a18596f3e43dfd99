"""One turn's answer as content blocks: what checkpoints, snapshots and the ending store.

A turn may span several model requests (tool rounds). Their blocks, and the
`tool_result` blocks the service sends back, are kept here in order, each
with the `seq` and text length at which it was added, so that the blocks
"as of" any event can be rebuilt for a `turn.snapshot`. The text of the
round still streaming is not a block yet: it is the tail of the turn's text
past the last block, added as a text block when asked for.
"""

from __future__ import annotations

from typing import Any, NamedTuple

Block = dict[str, Any]


class _Entry(NamedTuple):
    seq: int
    text_end: int
    block: Block


class Answer:
    __slots__ = ("_entries", "version")

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self.version = 0  # changes with every block added: checkpoints compare it

    def add(self, blocks: list[Block] | tuple[Block, ...], *, seq: int, text_end: int) -> None:
        self._entries.extend(_Entry(seq, text_end, block) for block in blocks)
        self.version += 1

    @property
    def count(self) -> int:
        """Blocks added so far: the index in the stored answer of the next one."""
        return len(self._entries)

    def blocks(self, text: str, seq: int | None = None) -> list[Block]:
        """The blocks so far (as of event `seq`, when given), ending with the text still streaming.

        `text` is the turn's text at that point."""
        entries = self._entries if seq is None else [e for e in self._entries if e.seq <= seq]
        blocks = [entry.block for entry in entries]
        tail = text[entries[-1].text_end :] if entries else text
        if tail:
            blocks.append({"type": "text", "text": tail})
        return blocks
