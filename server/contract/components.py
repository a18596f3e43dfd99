"""JSON Schemas of models, gathered under `#/components/schemas` of a document."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

REF_TEMPLATE = "#/components/schemas/{model}"


class _ContractSchema(GenerateJsonSchema):
    """Pydantic's schemas without a generated title on every field: names say enough."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


class Components:
    """The schemas of some models: requests in "validation" mode, replies in "serialization"."""

    def __init__(self, models: Iterable[tuple[type[BaseModel], JsonSchemaMode]]) -> None:
        pairs = list(dict.fromkeys(models))
        self._refs, top = models_json_schema(
            pairs, ref_template=REF_TEMPLATE, schema_generator=_ContractSchema
        )
        self.schemas: dict[str, Any] = top.get("$defs", {})

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
        return dict(self._refs[(model, mode)])
