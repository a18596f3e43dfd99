"""The operator's list of MCP servers (`MCP_SERVERS_FILE`, TOML or JSON), checked at start-up.

A mistake in the file stops start-up with one line naming the file, the field
and the cause, like every other setting: a server silently missing from the
model's tools would be found much later, by a user.

    [servers.tracker]            # or JSON: {"servers": {"tracker": {...}}}
    transport = "stdio"
    command = "tracker-mcp"
    args = ["--db", "/var/lib/tracker"]
    env = { TRACKER_TOKEN = "..." }
    tools = ["create_task"]      # optional allowlist of the server's tool names

    [servers.wiki]
    transport = "http"
    url = "https://wiki.internal/mcp"
    headers = { Authorization = "Bearer ...", X-Tenant = "{tenant_id}" }
"""

from __future__ import annotations

import json
import string
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from server.identity import Identity
from server.startup_errors import ConfigError

# A server's name prefixes its tools (`tracker__create_task`); "__" is the separator,
# so a name may not contain it, and the joined name must fit Anthropic's tool-name rule.
SEPARATOR = "__"
SERVER_NAME = r"^[A-Za-z0-9-]+(_[A-Za-z0-9-]+)*$"
TEMPLATE_FIELDS = frozenset({"tenant_id", "user_id"})


class _Server(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tools: tuple[str, ...] | None = None
    """Allowlist of the server's tool names; unset: all its tools."""
    call_timeout_seconds: float | None = Field(default=None, gt=0)
    """Overrides MCP_CALL_TIMEOUT_SECONDS for this server's calls."""


class StdioServer(_Server):
    transport: Literal["stdio"]
    command: str = Field(min_length=1)
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


class HttpServer(_Server):
    transport: Literal["http"]
    url: str = Field(pattern=r"^https?://[^\s/]+")
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with every request; `{tenant_id}` and `{user_id}` are the caller's on a tool call."""

    @field_validator("headers")
    @classmethod
    def _known_placeholders(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, template in headers.items():
            try:
                fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
            except ValueError as error:
                raise ValueError(f"header {name}: {error}") from None
            unknown = fields - TEMPLATE_FIELDS
            if unknown:
                raise ValueError(
                    f"header {name}: unknown placeholder {{{sorted(unknown)[0]}}}; "
                    "only {tenant_id} and {user_id}"
                )
        return headers

    @property
    def static_headers(self) -> dict[str, str]:
        """Headers without placeholders: the same on every request, initialize included."""
        return {k: v for k, v in self.headers.items() if not _has_placeholder(v)}

    def identity_headers(self, identity: Identity) -> dict[str, str]:
        """The templated headers filled in for one caller."""
        values = {"tenant_id": identity.tenant_id, "user_id": identity.user_id}
        return {k: v.format_map(values) for k, v in self.headers.items() if _has_placeholder(v)}


ServerConfig = Annotated[StdioServer | HttpServer, Field(discriminator="transport")]
ServerName = Annotated[str, Field(pattern=SERVER_NAME, max_length=32)]


class _ServersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    servers: dict[ServerName, ServerConfig]


def load_servers(path: Path) -> Mapping[str, StdioServer | HttpServer]:
    """The servers named in `path` (`.toml`, else JSON); `ConfigError` in one line otherwise."""
    where = f"MCP_SERVERS_FILE: {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: cannot read: {_reason(error)}") from None
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise ConfigError(f"{where}: not valid {kind}: {error}") from None
    try:
        return _ServersFile.model_validate(raw).servers
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise ConfigError(f"{where}: {field}: {first['msg']}{more}") from None


def _has_placeholder(template: str) -> bool:
    return any(f is not None for _, f, _, _ in string.Formatter().parse(template))


def _reason(error: Exception) -> str:
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error)
