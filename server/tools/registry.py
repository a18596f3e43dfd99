"""Tools as typed async functions, and the registry a deployment offers the model.

A tool is an async function whose parameters are its input: their type hints
(pydantic types, `Annotated[..., Field(...)]` for bounds and descriptions)
give the JSON schema sent to the model and validate what the model sends
back, which is untrusted. A parameter typed `ToolContext` is not input: it
is the caller's identity and the data access bound to it, so a tool can
reach only the caller's own data.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, get_type_hints

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.json_schema import GenerateJsonSchema

from server.identity import Identity

# Searches the caller's own messages: (query, limit) -> hits. Bound to one identity.
Search = Callable[[str, int], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool may know of its caller: who they are, and their own data only."""

    identity: Identity
    turn_id: str
    search: Search


class _Untitled(GenerateJsonSchema):
    """No generated title per field: the model reads names and descriptions, titles add tokens."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


class ToolInputError(Exception):
    """The model's input does not match the tool's schema; told to the model, never run."""


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    input_model: type[BaseModel]
    function: Callable[..., Awaitable[Any]]
    context_parameter: str | None  # the parameter that receives the ToolContext, if any
    # Where it comes from, as `GET /api/tools` says: `builtin`, or `module` (CHAT_TOOLS).
    source: str = "module"

    def spec(self) -> dict[str, Any]:
        """The tool as the Messages API's `tools` entry."""
        schema = self.input_model.model_json_schema(schema_generator=_Untitled)
        schema.pop("title", None)
        return {"name": self.name, "description": self.description, "input_schema": schema}

    async def call(self, raw_input: dict[str, Any], context: ToolContext) -> str:
        """Validate the model's input, run the tool, and give its output as text."""
        try:
            arguments = self.input_model.model_validate(raw_input)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}"
                for e in error.errors(include_url=False)[:5]
            )
            raise ToolInputError(f"Invalid input for {self.name}: {problems}") from None
        kwargs = {name: getattr(arguments, name) for name in type(arguments).model_fields}
        if self.context_parameter is not None:
            kwargs[self.context_parameter] = context
        output = await self.function(**kwargs)
        if isinstance(output, str):
            return output
        return orjson.dumps(output, default=str).decode()


def tool(
    function: Callable[..., Awaitable[Any]] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Any:
    """Make a `Tool` of an async function: `@tool` or `@tool(name=..., description=...)`.

    The description defaults to the docstring, which the model reads: say
    what the tool is for and what it returns.
    """

    def build(func: Callable[..., Awaitable[Any]]) -> Tool:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"tool {func.__name__} must be an async function")
        hints = get_type_hints(func, include_extras=True)
        fields: dict[str, Any] = {}
        context_parameter = None
        for parameter in inspect.signature(func).parameters.values():
            hint = hints.get(parameter.name, Any)
            if hint is ToolContext:
                context_parameter = parameter.name
                continue
            default = ... if parameter.default is inspect.Parameter.empty else parameter.default
            fields[parameter.name] = (hint, default)
        tool_name = name or func.__name__
        model = create_model(f"{tool_name}_input", __config__=ConfigDict(extra="forbid"), **fields)
        text = description or inspect.getdoc(func) or tool_name
        return Tool(tool_name, text, model, func, context_parameter)

    return build(function) if function is not None else build


class ToolRegistry:
    """The tools one deployment offers, by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            if item.name in self._tools:
                raise ValueError(f"two tools are named {item.name!r}")
            self._tools[item.name] = item
        self._specs = [t.spec() for t in self._tools.values()]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        return self._specs

    def catalogue(self) -> list[dict[str, Any]]:
        """The tools as `GET /api/tools` lists them: each spec and its source."""
        return [
            {**spec, "source": tool.source}
            for spec, tool in zip(self._specs, self._tools.values(), strict=True)
        ]

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def only(self, names: Iterable[str]) -> ToolRegistry:
        return ToolRegistry(self._tools[n] for n in names)
