"""Around every request: a request id in and out, a JSON log of it, errors as problems."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
import itertools
import json
import logging
import re
import secrets
import time
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from .. import logs
from ..storage.errors import describe
from .state import RELAY

_LOGGER = logging.getLogger("relay.http")
PROBLEM = "application/problem+json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: Request ids only need to be unique: a per-process random prefix and a counter (a uuid4 per
#: request cost an os.urandom system call each, measurable at 1,000 requests a second).
_RID_PREFIX = secrets.token_hex(4) + "-"
_RID_COUNTER = itertools.count(1)

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Answered requests are summed up in one line this often (seconds).
SUMMARY_SECONDS = 60.0
#: A request answered slower than this has a line of its own, whatever its status.
SLOW_SECONDS = 1.0


@dataclass
class RequestLog:
    """Every refused, failed or slow request gets a line of its own; the others (at 3,000
    reports a second, a line each was a tenth of the relay's time) are counted and summed up
    in one line a minute, unless ``every`` (``HPOLL_RELAY_LOG_REQUESTS=all``)."""

    every: bool = False
    statuses: Counter[int] = field(default_factory=Counter)
    slowest: float = 0.0
    since: float = field(default_factory=time.monotonic)

    def answered(self, request: web.Request, status: int, rid: str, seconds: float) -> None:
        """Log or count one answered request."""
        if self.every or status >= 400 or seconds > SLOW_SECONDS:
            _LOGGER.info(
                "%s %s %s",
                request.method,
                request.path,
                status,
                extra={
                    "fields": {
                        "request_id": rid,
                        "method": request.method,
                        "path": request.path,
                        "status": status,
                        "ms": round(seconds * 1000, 2),
                        "home_id": request.get("home_id"),
                    }
                },
            )
        else:
            self.statuses[status] += 1
            self.slowest = max(self.slowest, seconds)
        if time.monotonic() - self.since >= SUMMARY_SECONDS:
            self.flush()

    def flush(self) -> None:
        """The summary line of the requests counted since the last one (none: no line)."""
        now = time.monotonic()
        if self.statuses:
            _LOGGER.info(
                "%d requests answered in %.0f s",
                self.statuses.total(),
                now - self.since,
                extra={
                    "fields": {
                        "requests": self.statuses.total(),
                        "seconds": round(now - self.since, 1),
                        "statuses": {str(status): n for status, n in self.statuses.items()},
                        "slowest_ms": round(self.slowest * 1000, 2),
                    }
                },
            )
        self.statuses.clear()
        self.slowest, self.since = 0.0, now


REQUEST_LOG: web.AppKey[RequestLog] = web.AppKey("request_log")


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    """An RFC 9457 problem response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM)


def unavailable(detail: str, retry_after: int = 5) -> web.Response:
    """503 with Retry-After: the client should come back, nothing was done."""
    response = problem(503, "Service Unavailable", detail)
    response.headers["Retry-After"] = str(retry_after)
    return response


async def read_form(request: web.Request) -> dict[str, str]:
    """The request's form fields, read under the body timeout: a client that sends the headers
    and trickles (or never sends) the body gets a 408 instead of holding the connection."""
    try:
        async with asyncio.timeout(request.app[RELAY].settings.body_timeout):
            form = await request.post()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="the body did not arrive in time") from None
    return {key: value for key, value in form.items() if isinstance(value, str)}


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id in, request id out; the request logged (:class:`RequestLog`); errors as
    problems."""
    incoming = request.headers.get("X-Request-ID", "")
    rid = incoming if _REQUEST_ID.fullmatch(incoming) else f"{_RID_PREFIX}{next(_RID_COUNTER):x}"
    token = logs.request_id.set(rid)
    started = time.perf_counter()
    try:
        try:
            response = await handler(request)
        except web.HTTPRequestEntityTooLarge:
            response = problem(413, "Payload Too Large", "the report exceeds the size limit")
        except web.HTTPException as err:
            response = problem(err.status, err.reason, err.text or err.reason)
        except (SQLAlchemyError, OSError) as err:
            # Every path that needs the database says so the same way: try again shortly.
            _LOGGER.warning("database unavailable: %s", describe(err))
            response = unavailable("the database is unavailable")
        response.headers["X-Request-ID"] = rid
        request.app[REQUEST_LOG].answered(
            request, response.status, rid, time.perf_counter() - started
        )
        return response
    finally:
        logs.request_id.reset(token)
