"""The two documents, built once and kept serialised for the lifetime of the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from server.contract.asyncapi import build_asyncapi, servers_at
from server.contract.openapi import build_openapi


@dataclass(frozen=True, slots=True)
class Documents:
    openapi: bytes
    _asyncapi: dict[str, Any]

    @classmethod
    def build(cls) -> Documents:
        return cls(orjson.dumps(build_openapi()), build_asyncapi())

    def asyncapi(self, host: str, *, secure: bool) -> bytes:
        """The AsyncAPI document naming the host it is served from (the one the client used)."""
        return orjson.dumps({**self._asyncapi, "servers": servers_at(host, secure=secure)})
