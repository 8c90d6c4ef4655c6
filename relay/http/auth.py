"""Who is asking: a home (its bearer token, stored hashed) or the operator (the admin token).

Views say what they accept with :func:`authorized`; the view then finds ``request["home_id"]``
(the token's home) or ``request["admin"]`` set. Before any token is looked up, a client address
that caused too many refused requests gets 429 (see :func:`refused`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import functools
import hmac

from aiohttp import web

from ..tokens import token_hash
from .middleware import problem
from .state import RELAY, Relay

type View = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: A refused body that was read and parsed counts as one refusal per this many characters
#: (more): parsing 1.5 MB of JSON costs the event loop tens of milliseconds.
REFUSED_BYTES_PER_REFUSAL = 64 * 1024


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or len(header) > 300:
        return None
    return header[7:].strip()


def client_address(relay: Relay, request: web.Request) -> str:
    """The client's address: the peer, or what a trusted reverse proxy says it is."""
    remote = request.remote or ""
    if remote in relay.settings.trusted_proxies:
        forwarded = request.headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
        return forwarded or remote
    return remote


def _refusal_keys(relay: Relay, request: web.Request) -> list[str]:
    """Refusals count against the client's address and, once known, its home (a home whose
    reports are refused is limited whichever addresses they come from)."""
    keys = [client_address(relay, request)]
    if (home_id := request.get("home_id")) is not None:
        keys.append(_home_key(home_id))
    return keys


def _home_key(home_id: str) -> str:
    return f"home {home_id}"


def refused(
    request: web.Request, response: web.Response, *, unread: bool = False, read: int = 0
) -> web.Response:
    """Count a refusal against the client; ``unread``: the body was not read, so the
    connection closes instead of draining it (a refused upload costs no more work); ``read``:
    the body's length, when it was read and parsed (a big one counts as many refusals)."""
    relay = request.app[RELAY]
    cost = 1 + read / REFUSED_BYTES_PER_REFUSAL
    for key in _refusal_keys(relay, request):
        relay.refusals.acquire(key, cost)
    if unread:
        response.force_close()
    return response


def refusal_wait(request: web.Request, *, home_only: bool = False) -> float | None:
    """The seconds a client or home that caused too many refusals must wait, else None;
    ``home_only``: the client's address was already checked, the home is known now. (A plain
    function: every request asks, nearly none waits.)"""
    relay = request.app[RELAY]
    if home_only:
        return relay.refusals.blocked(_home_key(request["home_id"]))
    waits = [relay.refusals.blocked(key) for key in _refusal_keys(relay, request)]
    return max((w for w in waits if w is not None), default=None)


async def too_many_refusals(request: web.Request, wait: float) -> web.Response:
    """429 (closing the connection) for a client or home that must wait ``wait`` seconds
    (:func:`refusal_wait`), after ``refusal_delay``: a flood slows to the pace of that delay
    instead of the relay's."""
    relay = request.app[RELAY]
    relay.metrics.rejected["address_limited"] += 1
    await asyncio.sleep(relay.settings.refusal_delay)
    response = problem(429, "Too Many Requests", f"too many refused requests; retry in {wait} s")
    response.headers["Retry-After"] = str(wait)
    response.force_close()
    return response


async def home_for_token(relay: Relay, request: web.Request) -> str | None:
    """The home whose valid token the request carries, else None."""
    if (token := _bearer(request)) is None:
        return None
    digest = token_hash(token)
    # Nearly always the directory answers at once; only otherwise is there anything to await.
    return relay.tokens.fresh(digest) or await relay.tokens.home(digest)


def bearer_is(request: web.Request, expected: str | None) -> bool:
    """Whether the request carries ``expected`` as its bearer token (constant time)."""
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
            if (wait := refusal_wait(request)) is not None:
                return await too_many_refusals(request, wait)
            relay = request.app[RELAY]
            if admin and bearer_is(request, relay.settings.admin_token):
                request["admin"] = True
                return await view(request)
            home_id = await home_for_token(relay, request)
            if home_id is None:
                relay.metrics.rejected["unauthorized"] += 1
                return refused(
                    request,
                    problem(401, "Unauthorized", "missing, unknown or revoked home token"),
                    unread=True,
                )
            request["home_id"] = home_id
            return await view(request)

        return guarded

    return decorate
