"""A local HTTP sink that Apprise's json:// delivers to, recording what arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import contextlib
import socket
import threading
from typing import Any

from aiohttp import web


class Sink:
    """Runs an aiohttp server in its own thread (the code under test may own the main loop)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        """An Apprise URL that delivers here."""
        return f"json://127.0.0.1:{self.port}/"

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.json_response({}, status=self.status)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def start(self) -> None:
        """Listen."""
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        """Stop listening."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextlib.contextmanager
def running_sink(status: int = 200) -> Iterator[Sink]:
    """A sink for the duration of a block."""
    sink = Sink(status)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()
