"""The fake upstream's prompt cache: what a request reads, writes and pays in full, as billed.

Anthropic's rules, as documented for prompt caching:

- the prompt is read in the order tools, system, messages; a `cache_control`
  on a block is a breakpoint, at most four a request;
- at each breakpoint the API looks for a cached prefix ending there or at one
  of the ~20 block boundaries before it; the longest found is a cache read;
- the rest of the prompt up to the last breakpoint is a cache write (for the
  breakpoint's TTL: `5m` unless `ttl: "1h"`), the part after it plain input;
- a prefix shorter than the model's minimum (1,024 tokens here) is not cached;
- a read refreshes the entry's TTL; caches are per model.

Tokens are counted as about four characters of the block's JSON each: the
point is the proportions, measured, not the tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

LOOKBACK_BLOCKS = 20
MAX_BREAKPOINTS = 4
MIN_CACHEABLE_TOKENS = 1024
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


def count_tokens(block: Any) -> int:
    """About four characters a token, at least one per block."""
    return max(1, len(json.dumps(block, sort_keys=True)) // 4)


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The prompt's blocks in the API's order, each as sent (with its `cache_control`)."""
    blocks: list[dict[str, Any]] = list(body.get("tools") or [])
    system = body.get("system")
    if isinstance(system, str) and system:
        blocks.append({"type": "text", "text": system})
    elif isinstance(system, list):
        blocks.extend(system)
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            blocks.append({"type": "text", "text": content, "role": message.get("role")})
        else:
            blocks.extend({**block, "role": message.get("role")} for block in content or [])
    return blocks


def prompt_tokens(body: dict[str, Any]) -> int:
    """The whole prompt's tokens, as billed and as the counting endpoint answers."""
    return sum(
        count_tokens({k: v for k, v in block.items() if k != "cache_control"})
        for block in _blocks(body)
    )


@dataclass
class Accounting:
    input_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass
class PromptCache:
    """Prefixes written by earlier requests, by hash, with when each expires."""

    min_tokens: int = MIN_CACHEABLE_TOKENS
    entries: dict[str, float] = field(default_factory=dict)

    def breakpoints(self, body: dict[str, Any]) -> int:
        return sum(1 for block in _blocks(body) if "cache_control" in block)

    def account(self, body: dict[str, Any]) -> Accounting:
        """Bill one request, and write its breakpoints' prefixes for the next ones."""
        blocks = _blocks(body)
        now = time.monotonic()
        hashes: list[str] = []
        sums: list[int] = []  # tokens of the prefix ending at each block
        running = hashlib.sha256(str(body.get("model")).encode())
        total = 0
        for block in blocks:
            bare = {k: v for k, v in block.items() if k != "cache_control"}
            running.update(json.dumps(bare, sort_keys=True).encode())
            hashes.append(running.hexdigest())
            total += count_tokens(bare)  # as prompt_tokens counts
            sums.append(total)
        marks = [i for i, block in enumerate(blocks) if "cache_control" in block]
        if not marks or sums[marks[-1]] < self.min_tokens:
            return Accounting(total)
        hit = -1
        for mark in marks:
            for index in range(mark, max(-1, mark - LOOKBACK_BLOCKS - 1), -1):
                if self.entries.get(hashes[index], 0.0) > now:
                    hit = max(hit, index)
                    break
        read = sums[hit] if hit >= 0 else 0
        last = sums[marks[-1]]
        if hit >= 0:
            self.entries[hashes[hit]] = now + self._ttl(blocks[marks[-1]])
        for mark in marks:
            if sums[mark] >= self.min_tokens:
                self.entries[hashes[mark]] = now + self._ttl(blocks[mark])
        return Accounting(total - last, max(0, last - read), read)

    @staticmethod
    def _ttl(block: dict[str, Any]) -> float:
        return TTL_SECONDS.get(block["cache_control"].get("ttl", "5m"), TTL_SECONDS["5m"])


def check_breakpoints(body: dict[str, Any]) -> str | None:
    """What the API refuses of `cache_control`: more than four, on a thinking or empty block."""
    marked = [block for block in _blocks(body) if "cache_control" in block]
    if len(marked) > MAX_BREAKPOINTS:
        return f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided"
    for block in marked:
        if block.get("type") in {"thinking", "redacted_thinking"}:
            return "cache_control cannot be set for thinking blocks"
        if block.get("type") == "text" and not block.get("text"):
            return "cache_control cannot be set for empty text blocks"
        if block["cache_control"].get("type") != "ephemeral":
            return "cache_control.type: must be ephemeral"
    return None


def uncached(value: Any) -> Any:
    """`value` without its `cache_control`s, a lone text block written back as the string
    it was made from (`server/model/caching.py` turns a string into a block to mark it)."""
    if isinstance(value, list):
        return [uncached(item) for item in value]
    if not isinstance(value, dict):
        return value
    plain = {key: uncached(item) for key, item in value.items() if key != "cache_control"}
    for key in ("content", "system"):
        blocks = plain.get(key)
        mine = key == "system" or plain.get("role") == "user"
        lone = isinstance(blocks, list) and len(blocks) == 1 and set(blocks[0]) == {"type", "text"}
        if mine and lone and blocks[0]["type"] == "text":
            plain[key] = blocks[0]["text"]
    return plain
