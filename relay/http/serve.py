"""Running the app on a socket, with limits a hostile client cannot talk its way past.

- Headers: aiohttp closes a connection that has not completed a request within its keep-alive
  timeout, counted from the connection's start too; the relay sets that to
  ``HPOLL_RELAY_HEADER_TIMEOUT`` (10 s), so a client trickling headers (slowloris) or idling
  is dropped. Bodies are read under ``HPOLL_RELAY_BODY_TIMEOUT`` by the views (408).
- Connections: at most ``HPOLL_RELAY_MAX_CONNECTIONS`` (default: the open-file limit less a
  reserve for the database and logs); one more is answered ``503`` with ``Retry-After`` and
  closed at once, so file descriptors never run out and /healthz and ingest keep answering.
- Accept errors (EMFILE and friends): logged at most once a minute, with a count.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import time
from typing import Any

from aiohttp import web

from ..config import Settings

_LOGGER = logging.getLogger("relay.http")
#: File descriptors kept free for the database, the key file, logs and the listening socket.
FD_RESERVE = 64
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 21\r\n\r\ntoo many connections\n"
)
_ACCEPT_ERRORS = "socket.accept() out of system resource"


def connection_limit(settings: Settings) -> int:
    """The configured limit, or what the open-file limit allows."""
    if settings.max_connections > 0:
        return settings.max_connections
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(8, soft - FD_RESERVE)


class _Refuse(asyncio.Protocol):
    """A connection over the limit: one short 503, then closed (no request is read)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(REFUSAL)
        transport.close()


class AcceptErrorLog:
    """A loop exception handler that logs accept failures at most once per ``every`` seconds
    (with how many there were); everything else goes to the default handler."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self.suppressed = 0
        self._last = float("-inf")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != _ACCEPT_ERRORS:
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self._last < self.every:
            self.suppressed += 1
            return
        self._last = now
        error = context.get("exception")
        _LOGGER.error(
            "cannot accept connections: %s (%d more since the last message)",
            error.strerror if isinstance(error, OSError) else type(error).__name__,
            self.suppressed,
        )
        self.suppressed = 0


async def serve(app: web.Application, settings: Settings, ready: str) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down cleanly."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(AcceptErrorLog())
    runner = web.AppRunner(
        app, access_log=None, keepalive_timeout=settings.header_timeout, handle_signals=False
    )
    await runner.setup()
    server = runner.server
    assert server is not None
    limit = connection_limit(settings)

    def protocol() -> asyncio.Protocol:
        if len(server.connections) >= limit:
            return _Refuse()
        return server()

    listener = await loop.create_server(
        protocol, settings.host, settings.port, reuse_address=True, backlog=1024
    )
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(ready, flush=True)
    try:
        await stop.wait()
    finally:
        listener.close()
        await listener.wait_closed()
        await runner.cleanup()
