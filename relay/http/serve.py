"""Running the app on a socket, with limits a hostile client cannot talk its way past.

- Headers: aiohttp closes a connection that has not completed a request within its keep-alive
  timeout, counted from the connection's start too; the relay sets that to
  ``HPOLL_RELAY_HEADER_TIMEOUT`` (10 s), so a client trickling headers (slowloris) or idling
  is dropped. Bodies (reports, forms) are read under ``HPOLL_RELAY_BODY_TIMEOUT`` (408).
- Connections: at most ``HPOLL_RELAY_MAX_CONNECTIONS`` (default: half of the open-file limit
  less a reserve for the database, logs and connections being refused, as each connection may
  hold a file open too); one more is answered ``503`` with ``Retry-After`` and closed at once,
  so file descriptors do not run out and /healthz and ingest keep answering. Connections are
  counted from the moment they are accepted to their close, and taken off the kernel's queue
  a few at a time: asyncio's accept loop takes as many as its ``backlog`` before any of them
  is counted, so a burst of a thousand would otherwise take a thousand descriptors, and the
  database its next connection would fail. Request handlers still running after their client
  hung up count against the same limit.
- Responses: a connection whose kernel buffer has taken nothing more of its answer for
  ``HPOLL_RELAY_BODY_TIMEOUT`` is dropped (files, too, go through the transport's writes:
  ``relay/__init__.py`` turns aiohttp's sendfile off). A stop waits SHUTDOWN_GRACE seconds for
  open connections, then closes them.
- Refusals: counted (``hpoll_connections_refused_total``) and logged once a minute.
- Accept errors (EMFILE and friends): logged at most once a minute, with a count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import contextlib
import logging
import resource
import signal
import socket
from typing import Any, Protocol

from aiohttp import web

from ..config import Settings
from ..logs import Throttle
from ..metrics import Metrics
from .state import RELAY

_LOGGER = logging.getLogger("relay.http")
#: Connections taken off the kernel's queue per turn of the event loop: CPython's selector
#: event loop accepts up to its ``backlog`` argument (plus one) in one go, before the factory
#: counts any; the kernel queues up to KERNEL_BACKLOG.
ACCEPT_BATCH = 8
KERNEL_BACKLOG = 1024
#: File descriptors kept free for the database pool (up to 20), the key file, logs and the
#: listening sockets; and, per listening socket, for accepted connections not yet counted or
#: being refused, which stay open for up to four turns of the loop (accepted, handed a
#: protocol, written, closed).
FD_RESERVE = 64
IN_FLIGHT = 4 * (ACCEPT_BATCH + 1)
#: Seconds a stop waits for open connections to finish before closing them.
SHUTDOWN_GRACE = 5.0
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 21\r\n\r\ntoo many connections\n"
)
_ACCEPT_ERRORS = "socket.accept() out of system resource"


def connection_limit(settings: Settings, listening: int = 1) -> int:
    """The configured limit, or what the open-file limit allows with ``listening`` sockets."""
    if settings.max_connections > 0:
        return settings.max_connections
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    # Each connection may hold a file open too (a static file being sent).
    return max(8, (soft - FD_RESERVE - listening * IN_FLIGHT) // 2)


class _Refuse(asyncio.Protocol):
    """A connection over the limit: one short 503, then closed (no request is read)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(REFUSAL)
        transport.close()


class _Counted(asyncio.Protocol):
    """A connection within the limit: aiohttp's handler, counted until the connection closes,
    and dropped when the kernel has taken nothing more of what was written for the gate's
    ``stall`` seconds (aiohttp has no write timeout: 60 clients that pipelined requests and
    never read held every slot for good, and kept SIGTERM from finishing)."""

    def __init__(self, gate: ConnectionGate, handler: asyncio.Protocol) -> None:
        self._gate = gate
        self._handler = handler
        self._transport: asyncio.BaseTransport | None = None
        self._stalled: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if isinstance(transport, asyncio.WriteTransport):
            # Paused whenever the kernel has not taken all that was written (not only past
            # 64 KiB): the stall timer then runs for any answer a client leaves unread.
            transport.set_write_buffer_limits(high=0)
        self._handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received()

    def pause_writing(self) -> None:
        self._handler.pause_writing()
        if self._stalled is None and self._gate.stall is not None:
            loop = asyncio.get_running_loop()
            self._stalled = loop.call_later(self._gate.stall, self.drop)

    def resume_writing(self) -> None:
        self._unstalled()
        self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._unstalled()
        self._gate.counted.discard(self)
        self._handler.connection_lost(exc)

    def _unstalled(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None

    def drop(self) -> None:
        """Close the connection at once, whatever is left unsent."""
        self._stalled = None
        if isinstance(self._transport, asyncio.WriteTransport):
            self._transport.abort()


class Handlers(Protocol):
    """What the gate hands connections to: aiohttp's ``web.Server``."""

    @property
    def connections(self) -> Sequence[object]:
        """The request handlers still running (after their client left, until they finish)."""

    def __call__(self) -> asyncio.Protocol:
        """A new request handler."""


class ConnectionGate:
    """The protocol factory: aiohttp's handler while fewer than ``limit`` connections are open
    and fewer than ``limit`` handlers run (a handler goes on after its client hangs up, until
    what it awaits returns: without that bound, requests sent and dropped at once piled up
    handlers by the ten thousand), a refusal beyond, counted in ``metrics`` and logged as a
    warning at most once per ``every`` seconds (with how many since): a relay turning homes
    away says so."""

    def __init__(
        self,
        handlers: Handlers,
        limit: int,
        metrics: Metrics | None = None,
        every: float = 60.0,
        stall: float | None = None,
    ) -> None:
        self._handlers = handlers
        self.limit = limit
        self.stall = stall
        #: The connections handed a handler, from the factory call to ``connection_lost``.
        self.counted: set[_Counted] = set()
        self._metrics = metrics or Metrics()
        self._throttle = Throttle(every)

    @property
    def open(self) -> int:
        """Connections counted now."""
        return len(self.counted)

    def __call__(self) -> asyncio.Protocol:
        if self.open >= self.limit or len(self._handlers.connections) >= self.limit:
            self._refused()
            return _Refuse()
        counted = _Counted(self, self._handlers())
        self.counted.add(counted)
        return counted

    def _refused(self) -> None:
        self._metrics.connections_refused += 1
        if (left_out := self._throttle.due()) is not None:
            _LOGGER.warning(
                "refusing connections: %d open and %d request handlers running, limit %d "
                "(HPOLL_RELAY_MAX_CONNECTIONS); %d refused since the last message",
                self.open,
                len(self._handlers.connections),
                self.limit,
                left_out + 1,
            )


class AcceptErrorLog:
    """A loop exception handler that logs accept failures at most once per ``every`` seconds
    (with how many there were); everything else goes to the default handler."""

    def __init__(self, every: float = 60.0) -> None:
        self._throttle = Throttle(every)

    @property
    def suppressed(self) -> int:
        """Accept failures left out since the last one logged."""
        return self._throttle.suppressed

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != _ACCEPT_ERRORS:
            loop.default_exception_handler(context)
            return
        if (left_out := self._throttle.due()) is None:
            return
        error = context.get("exception")
        _LOGGER.error(
            "cannot accept connections: %s (%d more since the last message)",
            error.strerror if isinstance(error, OSError) else type(error).__name__,
            left_out,
        )


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
    # Its limit once the sockets are known; a response unread as long as a body may take to come.
    gate = ConnectionGate(server, 0, app[RELAY].metrics, stall=settings.body_timeout)
    listener = await loop.create_server(
        gate,
        settings.host,
        settings.port,
        reuse_address=True,
        backlog=ACCEPT_BATCH,
        start_serving=False,
    )
    gate.limit = connection_limit(settings, len(listener.sockets))
    await listener.start_serving()
    for listening in listener.sockets:  # listening with the batch size: the kernel queues more
        with socket.fromfd(listening.fileno(), listening.family, listening.type) as duplicate:
            duplicate.listen(KERNEL_BACKLOG)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(ready, flush=True)
    try:
        await stop.wait()
    finally:
        listener.close()
        # Connections still open after a grace period (a client that never reads, a handler
        # that waits) are closed: a stop must not wait on a stranger.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_GRACE):
                await listener.wait_closed()
        for connection in list(gate.counted):
            connection.drop()
        await runner.cleanup()
