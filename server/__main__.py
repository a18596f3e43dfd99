"""`python -m server` starts the service; `python -m server token --user NAME` mints a token."""

from __future__ import annotations

import argparse
import sys

from server.auth import Authenticator
from server.config import ConfigError, Settings, StartupError, load_settings
from server.listen import bind
from server.logs import AccessLogger, configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("--host", help="listen address (env HOST, default 127.0.0.1)")
    parser.add_argument("--port", help="listen port (env PORT, default 8080)")
    commands = parser.add_subparsers(dest="command")
    token = commands.add_parser("token", help="print a token signed with the configured secret")
    token.add_argument("--user", required=True)
    token.add_argument("--tenant")
    token.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    try:
        port = _port(args.port)
        settings = load_settings(host=args.host, port=port)
        if args.command == "token":
            authenticator = Authenticator(settings)
            if not authenticator.can_sign:
                raise ConfigError(
                    "token: needs JWT_SECRET (or dev sign-in); a public key cannot sign"
                )
            print(authenticator.issue(args.user, args.tenant, args.ttl))
            return 0
        serve(settings)
    except StartupError as error:
        print(f"{error.kind}: {error}", file=sys.stderr)
        return 2
    return 0


def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; a cause the operator can fix is raised as `StartupError`."""
    sockets = bind(settings.host, settings.port)
    port = sockets[0].getsockname()[1]
    configure_logging(settings)
    # Imported only to serve: the token command and a configuration error answer at
    # once, without loading the model SDK and the database driver (seconds).
    import uvloop

    from server.app import build_app
    from server.transport.malformed import run_app

    run_app(
        build_app(settings),
        sockets,
        lambda: print(f"chat service on http://{settings.host}:{port}/", flush=True),
        loop=uvloop.new_event_loop(),  # a cheaper loop: every relayed token crosses it twice
        access_log_class=AccessLogger,
        keepalive_timeout=75.0,
        # After the drain (app.py) only streams of turns run elsewhere are left.
        shutdown_timeout=3.0,
    )


def _port(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"--port={raw!r}: not an integer") from None
    if not 0 <= value <= 65535:
        raise ConfigError(f"--port={value}: must be between 0 and 65535")
    return value


if __name__ == "__main__":
    sys.exit(main())
