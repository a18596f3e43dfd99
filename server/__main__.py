"""`python -m server` starts the service; `python -m server token --user NAME` mints a token."""

from __future__ import annotations

import argparse
import sys

from server.auth import Authenticator
from server.config import Settings, load_settings, prepare_data_dir
from server.listen import bind
from server.logs import configure_logging
from server.startup_errors import ConfigError, StartupError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    flags = [
        parser.add_argument("--host", help="listen address (env HOST, default 127.0.0.1)"),
        parser.add_argument("--port", help="listen port (env PORT, default 8080)"),
    ]
    commands = parser.add_subparsers(dest="command")
    token = commands.add_parser("token", help="print a token signed with the configured secret")
    flags += [
        token.add_argument("--user", required=True),
        token.add_argument("--tenant"),
        token.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds"),
    ]
    argv = sys.argv[1:] if argv is None else argv
    known = {name for flag in flags for name in flag.option_strings} | {"-h", "--help"}
    for word in argv:
        # Else argparse takes `--prot 8092` for the command `8092` and names that instead.
        if word[:1] == "-" and not word[1:2].isdigit() and word.split("=", 1)[0] not in known:
            parser.error(f"unknown option {word.split('=', 1)[0]} (see --help)")
    args = parser.parse_args(argv)
    try:
        port = _port(args.port)
        settings = load_settings(host=args.host, port=port)
        if args.command == "token":
            prepare_data_dir(settings)
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
    prepare_data_dir(settings)  # after the port: a refused start-up writes nothing
    port = sockets[0].getsockname()[1]
    configure_logging(settings)
    workers = settings.web_concurrency
    banner = f"chat service on http://{settings.host}:{port}/"
    # Imported only to serve: the token command and a configuration error answer at
    # once, without loading the model SDK and the database driver (seconds).
    if workers == 1:
        from server.workers.service import run_service

        run_service(settings, sockets, lambda: print(banner, flush=True))
    else:
        from server.workers.supervisor import run

        run(settings, sockets, lambda: print(f"{banner} ({workers} workers)", flush=True))


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
