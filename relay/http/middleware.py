"""Around every request: a request id in and out, one JSON log line, errors as problems."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
from ..ingest import describe

_LOGGER = logging.getLogger("relay.http")
PROBLEM = "application/problem+json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: Request ids only need to be unique: a per-process random prefix and a counter (a uuid4 per
#: request cost an os.urandom system call each, measurable at 1,000 requests a second).
_RID_PREFIX = secrets.token_hex(4) + "-"
_RID_COUNTER = itertools.count(1)

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    """An RFC 9457 problem response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM)


def unavailable(detail: str, retry_after: int = 5) -> web.Response:
    """503 with Retry-After: the client should come back, nothing was done."""
    response = problem(503, "Service Unavailable", detail)
    response.headers["Retry-After"] = str(retry_after)
    return response


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id in, request id out; one JSON log line per request; errors as problems."""
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
        _LOGGER.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status,
            extra={
                "fields": {
                    "request_id": rid,
                    "method": request.method,
                    "path": request.path,
                    "status": response.status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "home_id": request.get("home_id"),
                }
            },
        )
        return response
    finally:
        logs.request_id.reset(token)
