"""Fix 8: a plain string is encoded and validated in one step.

Before a write mongoeco walks the whole document in `validate_bson_value`
(about fourteen times per write, once per nesting level it encodes, and
again per check), and encodes each value through a chain of some thirty
`isinstance` tests. A string, a bool or None goes through all of them and
comes out as itself: for an array of a few hundred words (a message's
search terms, storage/terms.py) this was most of the write's cost. Here those
values return at once, exactly as they would after the chain: the walk
skips them (nothing in it applies to them), and `encode` returns a `str` as
it is (its subclasses, such as BSON `Code`, still take the long way).
"""

from __future__ import annotations

from typing import Any

PLAIN = (str, bool, type(None))


def apply() -> None:
    from mongoeco.core import bson_scalars, codec

    original_encode = codec.DocumentCodec.encode
    original_validate = bson_scalars.validate_bson_value

    def encode(data: Any) -> Any:
        if type(data) is str:
            return data
        return original_encode(data)

    def validate_bson_value(value: object) -> None:
        # mongoeco's walk, with the values it would pass over let through first.
        pending = [value]
        while pending:
            current = pending.pop()
            if type(current) in PLAIN:
                continue
            if isinstance(current, dict):
                for key in current:
                    if not isinstance(key, str):
                        raise TypeError("BSON document keys must be strings")
                pending.extend(current.values())
            elif isinstance(current, (list, tuple)):
                pending.extend(current)
            else:
                original_validate(current)  # a set refused, a number checked

    codec.DocumentCodec.encode = staticmethod(encode)  # type: ignore[method-assign]
    codec.validate_bson_value = validate_bson_value  # type: ignore[attr-defined]
    bson_scalars.validate_bson_value = validate_bson_value
