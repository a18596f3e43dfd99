"""Settings from the environment, with the few command-line flags layered on top.

Every setting is read and checked here, once, at start-up (parsed by `env.py`'s
`EnvReader`): a bad value stops the process with one line naming the setting,
instead of failing on first use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from server.addresses import IPNetwork, is_loopback
from server.env import EnvReader
from server.prices import DEFAULT_TABLE, Prices, load_prices
from server.startup_errors import ConfigError

DEFAULT_MODEL = "claude-sonnet-4-5"
DEFAULT_MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1")
OFFLINE_MODEL = "offline"
# WEB_CONCURRENCY's ceiling: far above any machine's cores, low enough to catch a typo.
MAX_WORKERS = 256


@dataclass(frozen=True, slots=True)
class WebTool:
    """An Anthropic server tool (web search, web fetch) as the operator turned it on.

    At most one of the domain lists is set: the API refuses both at once.
    """

    max_uses: int
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    web_concurrency: int = 1  # worker processes on the port; 1: this process serves
    data_dir: Path = Path("data")
    mongodb_uri: str | None = None
    # How long a request may wait for the database before `storage_unavailable`.
    storage_timeout_seconds: float = 2.5
    redis_url: str | None = None  # None: processes meet only in MongoDB
    jwt_secret: str | None = None
    jwt_public_key_file: Path | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_tenant_claim: str = "tenant_id"
    jwt_leeway_seconds: int = 30
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    upstream_max_retries: int = 2
    upstream_timeout_seconds: float = 120.0
    # Connections to the model one process may hold, i.e. turns it streams at once:
    # a turn beyond waits for a free one (up to the time-out). The SDK's default.
    upstream_max_connections: int = 1000
    chat_model: str = DEFAULT_MODEL
    chat_models: tuple[str, ...] = DEFAULT_MODELS
    title_model: str = "claude-haiku-4-5"
    titles_enabled: bool = True
    max_output_tokens: int = 4096
    context_token_budget: int = 100_000
    max_message_chars: int = 32_000
    max_turns_per_connection: int = 4
    max_connections_per_user: int = 32
    max_turns_per_user: int = 8
    turns_per_minute: int = 30
    output_tokens_per_day: int = 0
    cost_per_user_per_day_usd: float = 0.0  # 0: no cost budget
    prompt_cache: bool = True
    prompt_cache_ttl: Literal["5m", "1h"] = "5m"
    # History trimmed by Anthropic's counts (stored once per message) or by the estimate.
    token_counts: Literal["api", "estimate"] = "api"
    prices: Prices = DEFAULT_TABLE
    max_connections_per_tenant: int = 0
    max_turns_per_tenant: int = 0
    tenant_turns_per_minute: int = 0
    output_tokens_per_tenant_per_day: int = 0
    on_disconnect: Literal["detach", "cancel"] = "detach"
    checkpoint_interval_seconds: float = 0.5
    # How long a cancel's acknowledgement waits for its ending to be stored before the
    # process's ending journal (turns/journal.py) makes it durable instead.
    cancel_ack_seconds: float = 0.025
    turn_lease_seconds: float = 30.0
    turn_retention_seconds: float = 300.0
    turn_retention_max: int = 1000
    shutdown_drain_seconds: float = 20.0
    offline_word_delay_seconds: float = 0.04
    ws_auth_timeout_seconds: float = 10.0
    sse_ping_seconds: float = 15.0
    ws_frames_per_second: float = 20.0
    ws_frame_burst: int = 40
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    trusted_proxies: tuple[IPNetwork, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    tool_modules: tuple[str, ...] = ()
    tools_allow: tuple[str, ...] | None = None  # None: every registered tool
    max_tool_rounds: int = 8
    tool_timeout_seconds: float = 30.0
    tool_output_max_chars: int = 10_000
    mcp_servers_file: Path | None = None
    mcp_connect_timeout_seconds: float = 10.0
    mcp_call_timeout_seconds: float = 30.0
    mcp_result_max_chars: int = 20_000
    mcp_health_check_seconds: float = 15.0
    web_search: WebTool | None = None  # None: off (the default)
    web_fetch: WebTool | None = None
    # The change feed: how long deletions are remembered for `/api/sync` (a cursor older
    # than that is refused with 410), and how often one user may ask (0: no limit).
    sync_tombstone_days: int = 30
    # Attachments (issue 21): defaults from Anthropic's documented limits.
    upload_max_bytes: int = 32 * 1024 * 1024
    image_max_bytes: int = 5 * 1024 * 1024
    image_long_edge: int = 1568
    image_max_pixels: int = 50_000_000
    pdf_max_pages: int = 100
    max_attachments: int = 20
    unused_file_hours: float = 24.0
    sync_per_minute: int = 120
    # Share links (`/s/{token}`) and the largest conversation document an import accepts.
    sharing: bool = True
    import_max_bytes: int = 10 * 1024 * 1024

    @property
    def offline(self) -> bool:
        """No API key: the service answers with the built-in offline model."""
        return not self.anthropic_api_key

    @property
    def token_counting(self) -> Literal["api", "estimate"]:
        """How history is measured: the offline model has no tokenizer, so it estimates."""
        return "estimate" if self.offline else self.token_counts

    @property
    def sync_tombstone_seconds(self) -> int:
        return self.sync_tombstone_days * 86_400

    @property
    def jwt_configured(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key_file or self.jwt_jwks_url)

    @property
    def dev_signin(self) -> bool:
        """Dev sign-in only for a loopback listener with no JWT setting at all."""
        return not self.jwt_configured and is_loopback(self.host)

    @property
    def models(self) -> tuple[str, ...]:
        return (OFFLINE_MODEL,) if self.offline else self.chat_models

    @property
    def default_model(self) -> str:
        return OFFLINE_MODEL if self.offline else self.chat_model


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
) -> Settings:
    """Build settings from `env` (default: os.environ); flags win over the environment."""
    env = os.environ if env is None else env
    reader = EnvReader(env)
    models = tuple(
        m.strip() for m in reader.text("CHAT_MODELS", ",".join(DEFAULT_MODELS)).split(",")
    )
    models = tuple(m for m in models if m)
    chat_model = reader.text("CHAT_MODEL", models[0] if models else DEFAULT_MODEL)
    if not models:
        raise ConfigError("CHAT_MODELS: the allowlist is empty")
    if chat_model not in models:
        models = (chat_model, *models)
    key_file = reader.optional("JWT_PUBLIC_KEY_FILE")
    if key_file is not None and not Path(key_file).is_file():
        raise ConfigError(f"JWT_PUBLIC_KEY_FILE: no such file: {key_file}")
    mcp_file = reader.optional("MCP_SERVERS_FILE")
    settings = Settings(
        host=host or reader.text("HOST", "127.0.0.1"),
        port=port if port is not None else reader.integer("PORT", 8080, minimum=0, maximum=65535),
        web_concurrency=reader.integer("WEB_CONCURRENCY", 1, minimum=1, maximum=MAX_WORKERS),
        data_dir=Path(reader.text("DATA_DIR", "data")),
        mongodb_uri=reader.mongodb_uri("MONGODB_URI"),
        storage_timeout_seconds=reader.number("STORAGE_TIMEOUT_SECONDS", 2.5, minimum=0.1),
        redis_url=reader.redis_url("REDIS_URL"),
        jwt_secret=reader.optional("JWT_SECRET"),
        jwt_public_key_file=Path(key_file) if key_file else None,
        jwt_jwks_url=reader.optional("JWT_JWKS_URL"),
        jwt_issuer=reader.optional("JWT_ISSUER"),
        jwt_audience=reader.optional("JWT_AUDIENCE"),
        jwt_tenant_claim=reader.text("JWT_TENANT_CLAIM", "tenant_id"),
        jwt_leeway_seconds=reader.integer("JWT_LEEWAY_SECONDS", 30, minimum=0, maximum=600),
        anthropic_api_key=reader.optional("ANTHROPIC_API_KEY"),
        anthropic_base_url=reader.optional("ANTHROPIC_BASE_URL"),
        upstream_max_retries=reader.integer("UPSTREAM_MAX_RETRIES", 2, minimum=0, maximum=10),
        upstream_timeout_seconds=reader.number("UPSTREAM_TIMEOUT_SECONDS", 120.0, minimum=0.1),
        upstream_max_connections=reader.integer(
            "UPSTREAM_MAX_CONNECTIONS", 1000, minimum=1, maximum=100_000
        ),
        chat_model=chat_model,
        chat_models=models,
        title_model=reader.text("TITLE_MODEL", "claude-haiku-4-5"),
        titles_enabled=reader.flag("CHAT_TITLES", True),
        max_output_tokens=reader.integer("MAX_OUTPUT_TOKENS", 4096, minimum=1, maximum=128_000),
        context_token_budget=reader.integer(
            "CONTEXT_TOKEN_BUDGET", 100_000, minimum=100, maximum=2_000_000
        ),
        max_message_chars=reader.integer("MAX_MESSAGE_CHARS", 32_000, minimum=1, maximum=1_000_000),
        max_turns_per_connection=reader.integer(
            "MAX_TURNS_PER_CONNECTION", 4, minimum=1, maximum=100
        ),
        max_connections_per_user=reader.integer(
            "MAX_CONNECTIONS_PER_USER", 32, minimum=0, maximum=100_000
        ),
        max_turns_per_user=reader.integer("MAX_TURNS_PER_USER", 8, minimum=0, maximum=100_000),
        turns_per_minute=reader.integer("TURNS_PER_MINUTE", 30, minimum=0, maximum=100_000),
        output_tokens_per_day=reader.integer("OUTPUT_TOKENS_PER_DAY", 0, minimum=0, maximum=10**12),
        cost_per_user_per_day_usd=reader.number("COST_PER_USER_PER_DAY_USD", 0.0, minimum=0.0),
        prompt_cache=reader.flag("PROMPT_CACHE", True),
        prompt_cache_ttl=reader.choice("PROMPT_CACHE_TTL", "5m", ("5m", "1h")),  # type: ignore[arg-type]
        token_counts=reader.choice("TOKEN_COUNTS", "api", ("api", "estimate")),  # type: ignore[arg-type]
        prices=load_prices(reader.optional("PRICES_FILE")),
        max_connections_per_tenant=reader.integer(
            "MAX_CONNECTIONS_PER_TENANT", 0, minimum=0, maximum=10_000_000
        ),
        max_turns_per_tenant=reader.integer(
            "MAX_TURNS_PER_TENANT", 0, minimum=0, maximum=1_000_000
        ),
        tenant_turns_per_minute=reader.integer(
            "TENANT_TURNS_PER_MINUTE", 0, minimum=0, maximum=10_000_000
        ),
        output_tokens_per_tenant_per_day=reader.integer(
            "OUTPUT_TOKENS_PER_TENANT_PER_DAY", 0, minimum=0, maximum=10**15
        ),
        on_disconnect=reader.choice("ON_DISCONNECT", "detach", ("detach", "cancel")),  # type: ignore[arg-type]
        checkpoint_interval_seconds=reader.number("CHECKPOINT_INTERVAL_SECONDS", 0.5, minimum=0.01),
        cancel_ack_seconds=reader.number("CANCEL_ACK_SECONDS", 0.025, minimum=0.0),
        turn_lease_seconds=reader.number("TURN_LEASE_SECONDS", 30.0, minimum=0.5),
        turn_retention_seconds=reader.number("TURN_RETENTION_SECONDS", 300.0, minimum=0.0),
        turn_retention_max=reader.integer("TURN_RETENTION_MAX", 1000, minimum=0, maximum=1_000_000),
        shutdown_drain_seconds=reader.number("SHUTDOWN_DRAIN_SECONDS", 20.0, minimum=0.0),
        offline_word_delay_seconds=reader.number("OFFLINE_WORD_DELAY_SECONDS", 0.04, minimum=0.0),
        ws_auth_timeout_seconds=reader.number("WS_AUTH_TIMEOUT_SECONDS", 10.0, minimum=0.1),
        sse_ping_seconds=reader.number("SSE_PING_SECONDS", 15.0, minimum=0.05),
        ws_frames_per_second=reader.number("WS_FRAMES_PER_SECOND", 20.0, minimum=0.1),
        ws_frame_burst=reader.integer("WS_FRAME_BURST", 40, minimum=1, maximum=10_000),
        log_format=reader.choice("LOG_FORMAT", "text", ("text", "json")),  # type: ignore[arg-type]
        log_level=reader.choice(
            "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"), upper=True
        ),
        trusted_proxies=reader.networks("TRUSTED_PROXIES"),
        allowed_origins=reader.origins("ALLOWED_ORIGINS"),
        tool_modules=reader.module_paths("CHAT_TOOLS"),
        tools_allow=reader.names("CHAT_TOOLS_ALLOW"),
        max_tool_rounds=reader.integer("MAX_TOOL_ROUNDS", 8, minimum=0, maximum=100),
        tool_timeout_seconds=reader.number("TOOL_TIMEOUT_SECONDS", 30.0, minimum=0.01),
        tool_output_max_chars=reader.integer(
            "TOOL_OUTPUT_MAX_CHARS", 10_000, minimum=100, maximum=1_000_000
        ),
        mcp_servers_file=Path(mcp_file) if mcp_file else None,
        mcp_connect_timeout_seconds=reader.number("MCP_CONNECT_TIMEOUT_SECONDS", 10.0, minimum=0.1),
        mcp_call_timeout_seconds=reader.number("MCP_CALL_TIMEOUT_SECONDS", 30.0, minimum=0.1),
        mcp_result_max_chars=reader.integer(
            "MCP_RESULT_MAX_CHARS", 20_000, minimum=100, maximum=1_000_000
        ),
        mcp_health_check_seconds=reader.number("MCP_HEALTH_CHECK_SECONDS", 15.0, minimum=0.1),
        web_search=_web_tool(reader, "WEB_SEARCH"),
        web_fetch=_web_tool(reader, "WEB_FETCH"),
        sync_tombstone_days=reader.integer("SYNC_TOMBSTONE_DAYS", 30, minimum=1, maximum=3650),
        upload_max_bytes=reader.integer(
            "UPLOAD_MAX_BYTES", 32 * 1024 * 1024, minimum=1024, maximum=1024**3
        ),
        image_max_bytes=reader.integer(
            "IMAGE_MAX_BYTES", 5 * 1024 * 1024, minimum=1024, maximum=100 * 1024**2
        ),
        image_long_edge=reader.integer("IMAGE_LONG_EDGE", 1568, minimum=16, maximum=8000),
        image_max_pixels=reader.integer(
            "IMAGE_MAX_PIXELS", 50_000_000, minimum=10_000, maximum=500_000_000
        ),
        pdf_max_pages=reader.integer("PDF_MAX_PAGES", 100, minimum=1, maximum=1000),
        max_attachments=reader.integer("MAX_ATTACHMENTS", 20, minimum=0, maximum=100),
        unused_file_hours=reader.number("UNUSED_FILE_HOURS", 24.0, minimum=0.0001),
        sync_per_minute=reader.integer("SYNC_PER_MINUTE", 120, minimum=0, maximum=100_000),
        sharing=reader.flag("SHARING", True),
        import_max_bytes=reader.integer(
            "IMPORT_MAX_BYTES", 10 * 1024 * 1024, minimum=1024, maximum=1024**3
        ),
    )
    if not settings.jwt_configured and not is_loopback(settings.host):
        raise ConfigError(
            f"HOST={settings.host}: refusing to listen on a non-loopback address with dev "
            "sign-in; set JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL"
        )
    return settings


def prepare_data_dir(settings: Settings) -> None:
    """Create DATA_DIR at start-up when something will write there, or say why not.

    The embedded database and the dev sign-in secret live there; found unusable
    on first write, it was a traceback from deep inside either."""
    if settings.mongodb_uri is not None and settings.jwt_configured:
        return
    path = settings.data_dir
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(
            f"DATA_DIR={path}: cannot be created ({reason}); set DATA_DIR to a folder "
            "this user can write"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"DATA_DIR={path}: not writable by this user; set DATA_DIR elsewhere")


def _web_tool(reader: EnvReader, prefix: str) -> WebTool | None:
    """`{prefix}` on/off, with `_MAX_USES` and one of `_ALLOWED_DOMAINS`/`_BLOCKED_DOMAINS`."""
    if not reader.flag(prefix, False):
        return None
    allowed = reader.domains(f"{prefix}_ALLOWED_DOMAINS")
    blocked = reader.domains(f"{prefix}_BLOCKED_DOMAINS")
    if allowed and blocked:
        raise ConfigError(
            f"{prefix}_ALLOWED_DOMAINS and {prefix}_BLOCKED_DOMAINS: set one or the other, "
            "not both (the API refuses both)"
        )
    max_uses = reader.integer(f"{prefix}_MAX_USES", 5, minimum=1, maximum=100)
    return WebTool(max_uses, allowed, blocked)
