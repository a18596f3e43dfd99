"""Anthropic's server tools (web search, web fetch): offered to the model, run by Anthropic.

The service only describes them in the request's `tools`; the model provider
runs them within the request and streams `server_tool_use` and
`*_tool_result` blocks, which the tool loop relays and stores but never runs.
Off unless the operator turns them on (WEB_SEARCH, WEB_FETCH): each use is
billed, and what they can reach is the open web, not the caller's data.
"""

from __future__ import annotations

from typing import Any

from server.config import Settings, WebTool

WEB_SEARCH_TYPE = "web_search_20250305"
WEB_FETCH_TYPE = "web_fetch_20250910"


def provider_tools(settings: Settings) -> list[dict[str, Any]]:
    """The server tool definitions to offer, in the Messages API's format."""
    specs = []
    if settings.web_search is not None:
        specs.append(_spec(WEB_SEARCH_TYPE, "web_search", settings.web_search))
    if settings.web_fetch is not None:
        # Cited fetches let the answer point at the page's text, as search results do.
        specs.append(
            _spec(WEB_FETCH_TYPE, "web_fetch", settings.web_fetch)
            | {"citations": {"enabled": True}}
        )
    return specs


# What `GET /api/tools` tells of them: the provider defines their input, not us.
DESCRIPTIONS = {
    "web_search": (
        "Searches the web and cites its sources (run by Anthropic, billed per search).",
        {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    ),
    "web_fetch": (
        "Fetches a web page or PDF by its URL, with citations (run by Anthropic).",
        {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
    ),
}


def catalogue(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The server tools offered, as `GET /api/tools` lists them (source `anthropic`)."""
    listed = []
    for spec in specs:
        description, schema = DESCRIPTIONS[spec["name"]]
        listed.append(
            {
                "name": spec["name"],
                "description": description,
                "input_schema": schema,
                "source": "anthropic",
            }
        )
    return listed


def _spec(type_: str, name: str, tool: WebTool) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_, "name": name, "max_uses": tool.max_uses}
    if tool.allowed_domains:
        spec["allowed_domains"] = list(tool.allowed_domains)
    if tool.blocked_domains:
        spec["blocked_domains"] = list(tool.blocked_domains)
    return spec
