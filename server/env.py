"""Reading environment variables as typed, bounded values, for the settings.

`config.py` says which variables there are and what they default to; this module
says how one is parsed and what a bad one is told.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from server.addresses import IPNetwork, normalize_origin
from server.startup_errors import ConfigError


class EnvReader:
    """Typed access to the environment, each failure naming its variable.

    Every setting is read through here once, at start-up, and checked against its
    bounds: a bad value stops start-up with a one-line `ConfigError` naming the
    variable, instead of failing on first use, deep in a turn, with a traceback.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def redis_url(self, name: str) -> str | None:
        """A Redis URL (`redis://`, `rediss://`, `unix://`); None when unset."""
        raw = self.optional(name)
        if raw is not None and not re.match(r"(rediss?|unix)://\S+$", raw):
            raise ConfigError(f"{name}: not a URL like redis://host:6379/0 (or rediss://, unix://)")
        return raw

    def mongodb_uri(self, name: str) -> str | None:
        """A MongoDB connection string; None when unset (the embedded database).

        The driver would read `notauri` as a host name and spend its whole
        server-selection time looking for it: a typo is told at once instead."""
        raw = self.optional(name)
        if raw is not None and not re.match(r"mongodb(\+srv)?://\S+$", raw):
            # The value is not echoed: it may hold a password.
            raise ConfigError(
                f"{name}: not a MongoDB URI; it must look like mongodb://host:27017/chat "
                "(or mongodb+srv://...)"
            )
        return raw

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: not an integer") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name}={value}: must be between {minimum} and {maximum}")
        return value

    def number(self, name: str, default: float, *, minimum: float) -> float:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: not a number") from None
        if not value >= minimum:
            raise ConfigError(f"{name}={value}: must be at least {minimum}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name}={raw!r}: expected on/off")

    def networks(self, name: str) -> tuple[IPNetwork, ...]:
        """Comma-separated IP addresses or CIDR blocks; empty when unset."""
        items = [item.strip() for item in (self.optional(name) or "").split(",")]
        try:
            return tuple(ipaddress.ip_network(item, strict=False) for item in items if item)
        except ValueError as error:
            raise ConfigError(f"{name}: {error}") from None

    def origins(self, name: str) -> tuple[str, ...]:
        """Comma-separated web origins (`https://app.example.com`), normalized; empty when unset."""
        items = [item.strip() for item in (self.optional(name) or "").split(",")]
        origins = []
        for item in filter(None, items):
            origin = normalize_origin(item)
            if origin is None:
                raise ConfigError(f"{name}: {item!r} is not an origin like https://app.example.com")
            origins.append(origin)
        return tuple(origins)

    def module_paths(self, name: str) -> tuple[str, ...]:
        """Comma-separated dotted module paths (`package.module`); empty when unset."""
        items = [item.strip() for item in (self.optional(name) or "").split(",")]
        paths = tuple(item for item in items if item)
        for path in paths:
            if not all(part.isidentifier() for part in path.split(".")):
                raise ConfigError(f"{name}={path!r}: not a module path like package.module")
        return paths

    def names(self, name: str) -> tuple[str, ...] | None:
        """Comma-separated names; None when unset, () for `none`."""
        raw = self.optional(name)
        if raw is None:
            return None
        if raw.lower() == "none":
            return ()
        items = tuple(item.strip() for item in raw.split(",") if item.strip())
        bad = [item for item in items if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", item)]
        if bad or not items:
            raise ConfigError(f"{name}={raw!r}: expected tool names separated by commas, or none")
        return items

    def domains(self, name: str) -> tuple[str, ...]:
        """Comma-separated domains (`example.com`, `docs.example.com/api`); no scheme."""
        items = tuple(item.strip() for item in (self.optional(name) or "").split(","))
        for item in filter(None, items):
            if not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(/\S*)?", item):
                raise ConfigError(
                    f"{name}: {item!r} is not a domain like example.com (no https://)"
                )
        return tuple(filter(None, items))

    def choice(
        self, name: str, default: str, choices: tuple[str, ...], *, upper: bool = False
    ) -> str:
        raw = self.optional(name)
        if raw is None:
            return default
        value = raw.upper() if upper else raw.lower()
        if value not in choices:
            raise ConfigError(f"{name}={raw!r}: expected one of {', '.join(choices)}")
        return value
