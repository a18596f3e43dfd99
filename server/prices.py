"""What an answer cost: a price per model, Anthropic's published ones unless `PRICES_FILE` says.

Read once at start-up, like every setting: a price file that is not JSON, or
that misses a price, or gives one that is negative or not a number, stops
start-up with one line naming the model and the price (`ConfigError`).
Below `config.py`: it imports nothing of the service but the start-up error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import orjson

from server.startup_errors import ConfigError

PER_MILLION = 1_000_000
PER_THOUSAND = 1_000
REQUIRED = ("input", "output", "cache_write", "cache_read")
OPTIONAL = ("cache_write_1h", "web_search")
FALLBACK = "*"  # the entry that prices a model the table does not name
# What a request is billed for, as the API's `usage` reports it (web searches apart).
USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "web_search_requests",
)


@dataclass(frozen=True, slots=True)
class Spent:
    """What a user (or a tenant) spent in a period: for the daily budgets."""

    output_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens; `web_search` per thousand searches.

    `cache_write` is the 5-minute write (1.25 x input), `cache_write_1h` the
    one-hour one (2 x input), as Anthropic bills them.
    """

    input: float
    output: float
    cache_write: float
    cache_read: float
    cache_write_1h: float
    web_search: float = 10.0

    def cost_usd(self, usage: Mapping[str, int], *, long_ttl: bool = False) -> float:
        write = self.cache_write_1h if long_ttl else self.cache_write
        tokens = (
            usage.get("input_tokens", 0) * self.input
            + usage.get("output_tokens", 0) * self.output
            + usage.get("cache_creation_input_tokens", 0) * write
            + usage.get("cache_read_input_tokens", 0) * self.cache_read
        )
        searches = usage.get("web_search_requests", 0) * self.web_search / PER_THOUSAND
        return round(tokens / PER_MILLION + searches, 8)


def _price(input: float, output: float) -> ModelPrice:
    return ModelPrice(input, output, input * 1.25, input * 0.1, input * 2)


SONNET = _price(3.0, 15.0)
# Anthropic's list prices (claude.com/pricing, December 2026); a dated id
# (`claude-sonnet-4-5-20250929`) takes the price of the longest name it starts with.
DEFAULT_PRICES: Mapping[str, ModelPrice] = MappingProxyType(
    {
        "claude-opus-4-5": _price(5.0, 25.0),
        "claude-opus-4-1": _price(15.0, 75.0),
        "claude-opus-4": _price(15.0, 75.0),
        "claude-sonnet-4-5": SONNET,
        "claude-sonnet-4": SONNET,
        "claude-3-7-sonnet": SONNET,
        "claude-haiku-4-5": _price(1.0, 5.0),
        "claude-3-5-haiku": ModelPrice(0.8, 4.0, 1.0, 0.08, 1.6),
        "claude-3-haiku": ModelPrice(0.25, 1.25, 0.3, 0.03, 0.5),
        "offline": ModelPrice(0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        FALLBACK: SONNET,
    }
)


@dataclass(frozen=True, slots=True)
class Prices:
    # A plain dict, never changed: the settings travel to worker processes pickled,
    # which a MappingProxyType cannot be.
    table: dict[str, ModelPrice] = field(default_factory=lambda: dict(DEFAULT_PRICES), hash=False)

    def of(self, model: str) -> ModelPrice:
        if model in self.table:
            return self.table[model]
        named = [name for name in self.table if name != FALLBACK and model.startswith(name)]
        if named:
            return self.table[max(named, key=len)]
        return self.table.get(FALLBACK, SONNET)


DEFAULT_TABLE = Prices()


def load_prices(path: str | None) -> Prices:
    """The default table, with the models of `path` (JSON) replaced or added."""
    if path is None:
        return DEFAULT_TABLE
    name = f"PRICES_FILE={path}"
    try:
        raw = orjson.loads(Path(path).read_bytes())
    except OSError as error:
        raise ConfigError(f"{name}: cannot be read ({error.strerror})") from None
    except orjson.JSONDecodeError as error:
        raise ConfigError(f"{name}: not JSON ({error})") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f'{name}: expected {{"<model>": {{"input": 3.0, ...}}, ...}}')
    table = dict(DEFAULT_PRICES)
    for model, entry in raw.items():
        table[model] = _model_price(name, model, entry)
    return Prices(table)


def _model_price(name: str, model: str, entry: object) -> ModelPrice:
    if not isinstance(entry, dict):
        raise ConfigError(f"{name}: {model}: expected an object of prices")
    for key in REQUIRED:
        if key not in entry:
            raise ConfigError(f"{name}: {model}.{key}: missing (USD per million tokens)")
    unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ConfigError(f"{name}: {model}.{unknown[0]}: not a price this service knows")
    values: dict[str, float] = {}
    for key, value in entry.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name}: {model}.{key}={value!r}: not a number")
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name}: {model}.{key}={value!r}: must be 0 or more")
        values[key] = float(value)
    values.setdefault("cache_write_1h", values["input"] * 2)
    return ModelPrice(**values)
