"""What the deployment says about itself: health, models, tools, its own documents."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, RootModel

from server.contract.shapes.base import Shape


class Health(Shape):
    status: Literal["ok"]
    pid: int = Field(description="The process that answered (one of the WEB_CONCURRENCY workers).")


class Models(Shape):
    models: list[str] = Field(description="The allowlist")
    default: str
    context_tokens: int = Field(
        description="How much of a conversation a turn sends (CONTEXT_TOKEN_BUDGET): older "
        "messages beyond it are left out. Clients show the context in use against it."
    )
    token_counts: Literal["api", "estimate"] = Field(
        description="How the history's tokens are counted against it: `api`, each message "
        "counted once by Anthropic's counting endpoint (the estimate until then); `estimate`, "
        "about four characters a token (the offline model, or TOKEN_COUNTS=estimate)"
    )


ToolSource = Annotated[
    str,
    Field(
        pattern=r"^(builtin|module|anthropic|mcp:.+)$",
        description="`builtin`, `module` (the operator's CHAT_TOOLS), `mcp:<server>`, or "
        "`anthropic` (run by the model provider: web search, web fetch)",
    ),
]


class ToolInfo(Shape):
    name: str = Field(description="As the model calls it; MCP tools are `<server>__<tool>`")
    description: str
    input_schema: dict[str, Any] = Field(description="A JSON Schema of the tool's input")
    source: ToolSource


class ToolList(Shape):
    tools: list[ToolInfo]


class Document(RootModel[dict[str, Any]]):
    """A JSON document (the OpenAPI or AsyncAPI description itself)."""
