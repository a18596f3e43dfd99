"""The registry of a deployment: the built-in tools, the operator's modules, the allowlist.

Loaded at start-up, so a module that does not import, or an allowlist naming
an unknown tool, stops the service with one line instead of failing a turn.
"""

from __future__ import annotations

import importlib

from server.config import Settings
from server.startup_errors import ConfigError
from server.tools.builtin import BUILTIN_TOOLS
from server.tools.registry import Tool, ToolRegistry


def load_registry(settings: Settings) -> ToolRegistry:
    tools: list[Tool] = list(BUILTIN_TOOLS)
    for path in settings.tool_modules:
        tools.extend(_tools_of(path))
    try:
        registry = ToolRegistry(tools)
    except ValueError as error:
        raise ConfigError(f"CHAT_TOOLS: {error}") from None
    if settings.tools_allow is None:
        return registry
    unknown = [name for name in settings.tools_allow if registry.get(name) is None]
    if unknown:
        raise ConfigError(
            f"CHAT_TOOLS_ALLOW: no tool named {', '.join(unknown)}; "
            f"the tools are {', '.join(registry.names)}"
        )
    return registry.only(settings.tools_allow)


def _tools_of(path: str) -> list[Tool]:
    """A module's `TOOLS` sequence if it has one, else every `Tool` defined at its top level."""
    try:
        module = importlib.import_module(path)
    except Exception as error:  # any failure of the operator's module is a start-up error
        raise ConfigError(f"CHAT_TOOLS: cannot import {path}: {error}") from None
    declared = getattr(module, "TOOLS", None)
    found = list(declared) if declared is not None else list(vars(module).values())
    tools = [item for item in found if isinstance(item, Tool)]
    if not tools:
        raise ConfigError(f"CHAT_TOOLS: module {path} defines no tool (decorate with @tool)")
    return tools
