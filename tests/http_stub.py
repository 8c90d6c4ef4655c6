"""A real HTTP server on loopback that answers with scripted responses and records requests.

Used instead of patching aiohttp: the client's real request path (headers, JSON encoding,
timeouts, body streaming) is what gets tested.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from dataclasses import dataclass, field
import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    payload: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    #: send ``body`` chunked, with no Content-Length
    chunked: bool = False


@dataclass
class Seen:
    """One request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


class StubServer:
    """Queue replies per (method, path); each request pops the next one (or 404s)."""

    def __init__(self) -> None:
        self._replies: defaultdict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self.requests: list[Seen] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        """Base URL, without trailing slash."""
        return str(self._server.make_url("")).rstrip("/")

    def add(self, method: str, path: str, **reply: Any) -> None:
        """Queue one reply."""
        self._replies[(method, path)].append(Reply(**reply))

    async def start(self) -> None:
        """Listen on a free loopback port."""
        await self._server.start_server()

    async def close(self) -> None:
        """Stop listening."""
        await self._server.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append(
            Seen(
                request.method,
                request.path,
                dict(request.headers),
                json.loads(raw) if raw else None,
            )
        )
        queue = self._replies.get((request.method, request.path))
        if not queue:
            return web.Response(status=404, text="no reply scripted")
        reply = queue.popleft()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.chunked and reply.body is not None:
            response = web.StreamResponse(status=reply.status, headers=reply.headers)
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(reply.body), 1 << 20):
                await response.write(reply.body[start : start + (1 << 20)])
            await response.write_eof()
            return response
        if reply.body is not None:
            return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        return web.json_response(reply.payload, status=reply.status, headers=reply.headers)
