"""Logging: plain text for a terminal, JSON lines (LOG_FORMAT=json) for collectors.

One access line per request with client address, method, path, status, duration
and user.
"""

from __future__ import annotations

import logging
import sys

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from pythonjsonlogger.json import JsonFormatter

from server.config import Settings
from server.forwarded import client_address
from server.typedefs import identity_key


def configure_logging(settings: Settings, worker: int | None = None) -> None:
    """Log lines to stderr; a worker of WEB_CONCURRENCY names itself in each (`worker 2`)."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                timestamp=False,
                static_fields={} if worker is None else {"worker": worker},
            )
        )
    else:
        where = "" if worker is None else f" worker {worker}"
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s{where} %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        identity = request.get(identity_key)
        user = f"{identity.tenant_id}/{identity.user_id}" if identity is not None else "-"
        remote = client_address(request)
        self.logger.info(
            "%s %s %s %s %.1fms %s",
            remote,
            request.method,
            request.path,
            response.status,
            time * 1000,
            user,
            extra={
                "remote": remote,
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "duration_ms": round(time * 1000, 1),
                "user": user,
            },
        )
