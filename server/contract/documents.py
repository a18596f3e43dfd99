"""The two documents, built once and kept serialised for the lifetime of the app."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from server.contract.asyncapi import build_asyncapi
from server.contract.openapi import build_openapi


@dataclass(frozen=True, slots=True)
class Documents:
    openapi: bytes
    asyncapi: bytes

    @classmethod
    def build(cls) -> Documents:
        return cls(orjson.dumps(build_openapi()), orjson.dumps(build_asyncapi()))
