"""JSON Schemas of models, gathered under `#/components/schemas` of a document."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

REF_TEMPLATE = "#/components/schemas/{model}"


class _ExactSchema(GenerateJsonSchema):
    """Pydantic's schemas without a generated title on every field: names say enough."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


class _OpenSchema(_ExactSchema):
    """As published: what the server sends allows fields beyond those named.

    A client generated from the documents must keep working when a later
    version adds a field to a reply or a frame (protocol.md: keep and skip
    what you do not know), so replies ("serialization") are not
    `additionalProperties: false`. Requests stay exact: the server refuses
    unknown fields, and says so."""

    def model_schema(self, schema: Any) -> Any:
        built = super().model_schema(schema)
        if self.mode == "serialization" and built.get("additionalProperties") is False:
            del built["additionalProperties"]
        return built


class Components:
    """The schemas of some models: requests in "validation" mode, replies in "serialization".

    `exact`: replies as the server sends them, nothing beyond the fields named (the
    tests check the server against that); otherwise as published, open to additions."""

    def __init__(
        self, models: Iterable[tuple[type[BaseModel], JsonSchemaMode]], *, exact: bool = False
    ) -> None:
        pairs = list(dict.fromkeys(models))
        self._refs, top = models_json_schema(
            pairs,
            ref_template=REF_TEMPLATE,
            schema_generator=_ExactSchema if exact else _OpenSchema,
        )
        self.schemas: dict[str, Any] = top.get("$defs", {})

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
        return dict(self._refs[(model, mode)])
