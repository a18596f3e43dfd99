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


def _spec(type_: str, name: str, tool: WebTool) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_, "name": name, "max_uses": tool.max_uses}
    if tool.allowed_domains:
        spec["allowed_domains"] = list(tool.allowed_domains)
    if tool.blocked_domains:
        spec["blocked_domains"] = list(tool.blocked_domains)
    return spec
