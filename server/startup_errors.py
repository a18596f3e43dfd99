"""Why the service refuses to start: errors `python -m server` prints as one line.

Their own module so that every layer that can stop start-up (the settings, the port,
the embedded database, the tool and MCP loaders) raises the same kind without
importing the settings.
"""

from __future__ import annotations


class StartupError(Exception):
    """The service cannot start; the message names the cause and the fix, in one line.

    `python -m server` prints it as `<kind>: <message>` and exits with code 2, no
    traceback: an operator can act on it without reading the code.
    """

    kind = "cannot start"


class ConfigError(StartupError):
    """A setting is missing or malformed; the message names it."""

    kind = "configuration error"
