"""Requests aiohttp cannot parse, answered like every other error: problem+json.

aiohttp refuses a request it cannot parse (a header line over 8190 bytes, a
garbled request line) before any of our code runs: a plain-text 400 that
echoes the start of the offending line, an `Authorization` header's token
included, and an ERROR log line with the same bytes. It offers no hook for that
answer (aio-libs/aiohttp#3287), so the runner is made to build connections with
a handler whose `handle_error` answers as the service does, without echoing
anything. tests/test_security.py pins this through a real socket, so an aiohttp
upgrade that moves these internals fails a test rather than leaking again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from server.errors import HTTP_ERROR_CODES, HeaderTooLarge, InternalError
from server.transport.headers import secure
from server.transport.problems import problem_from_error, problem_response

log = logging.getLogger(__name__)

# aiohttp's defaults, named here because the error detail quotes them.
MAX_LINE_BYTES = 8190


class ProblemRequestHandler(web.RequestHandler):
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already sent; cannot send an error")
        if isinstance(exc, HttpProcessingError):
            # The exception's text quotes the request; its type is all the log needs.
            log.info(
                "refused an unparseable request from %s: %s", request.remote, type(exc).__name__
            )
            if isinstance(exc, LineTooLong):
                response = problem_from_error(
                    HeaderTooLarge(
                        f"A header or the request line is longer than {MAX_LINE_BYTES} bytes"
                    )
                )
            else:
                response = problem_response(
                    400, "Bad request", "The request is not valid HTTP/1.1", HTTP_ERROR_CODES[400]
                )
        else:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            response = problem_from_error(InternalError())
        secure(response.headers)
        response.force_close()
        return response


class _ProblemServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ProblemAppRunner(web.AppRunner):
    """An AppRunner whose connections answer unparseable requests with problem+json."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _ProblemServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )


def run_app(
    app: web.Application,
    sockets: list[socket.socket],
    on_listening: Callable[[], None],
    loop: asyncio.AbstractEventLoop | None = None,
    **runner_options: Any,
) -> None:
    """`web.run_app` with ProblemAppRunner: serve until SIGINT/SIGTERM, then shut down gracefully.

    The same order as aiohttp's: the app's cleanup runs first, then whatever is left."""
    loop = loop or asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, sockets, on_listening, runner_options))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            rest = asyncio.all_tasks(loop)
            for task in rest:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


async def _serve(
    app: web.Application,
    sockets: list[socket.socket],
    on_listening: Callable[[], None],
    runner_options: dict[str, Any],
) -> None:
    runner = ProblemAppRunner(app, handle_signals=True, **runner_options)
    await runner.setup()
    try:
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        on_listening()
        await asyncio.Event().wait()  # until a signal raises GracefulExit
    finally:
        await runner.cleanup()
