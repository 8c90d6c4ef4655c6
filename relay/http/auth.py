"""Who is asking: a home (its bearer token, stored hashed) or the operator (the admin token).

Views say what they accept with :func:`authorized`; the view then finds ``request["home_id"]``
(the token's home) or ``request["admin"]`` set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import functools
import hmac
import time

from aiohttp import web
from sqlalchemy import select

from ..storage.models import HomeToken
from ..tokens import token_hash
from .middleware import problem
from .state import RELAY, Relay

type View = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or len(header) > 300:
        return None
    return header[7:].strip()


async def home_for_token(relay: Relay, request: web.Request) -> str | None:
    """The home whose valid token the request carries (cached briefly), else None."""
    token = _bearer(request)
    if token is None:
        return None
    digest = token_hash(token)
    now = time.monotonic()
    cached = relay.token_cache.get(digest)
    if cached is not None and now - cached[1] < relay.settings.token_cache_seconds:
        return cached[0]
    tokens = HomeToken.__table__
    async with relay.engine.connect() as connection:
        home_id: str | None = await connection.scalar(
            select(tokens.c.home_id).where(
                tokens.c.token_hash == digest, tokens.c.revoked_at.is_(None)
            )
        )
    if home_id is None:
        relay.token_cache.pop(digest, None)
    elif relay.settings.token_cache_seconds > 0:
        relay.token_cache[digest] = (home_id, now)
    return home_id


def is_admin(relay: Relay, request: web.Request) -> bool:
    """Whether the request carries the admin token (compared in constant time)."""
    expected = relay.settings.admin_token
    token = _bearer(request)
    if not expected or token is None:
        return False
    return hmac.compare_digest(token_hash(token), token_hash(expected))


def authorized(*, admin: bool = False) -> Callable[[View], View]:
    """A view for a home's token (``request["home_id"]``), and with ``admin=True`` also for the
    admin token (``request["admin"]``); anyone else gets 401."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        async def guarded(request: web.Request) -> web.StreamResponse:
            relay = request.app[RELAY]
            if admin and is_admin(relay, request):
                request["admin"] = True
                return await view(request)
            home_id = await home_for_token(relay, request)
            if home_id is None:
                relay.metrics.rejected["unauthorized"] += 1
                return problem(401, "Unauthorized", "missing, unknown or revoked token")
            request["home_id"] = home_id
            return await view(request)

        return guarded

    return decorate
