"""What every dashboard response carries, and what every dashboard request must show.

``view`` wraps each page handler (the dashboard's one entry point for access control):
it finds the signed-in caregiver from the session cookie, refuses a POST without the form's
CSRF token and sends anonymous visitors of private pages to sign in. ``add_headers`` gives
every dashboard response a strict Content-Security-Policy, no caching and no referrer
(sign-in links carry a token).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import functools
import hmac
import secrets

from aiohttp import web

from ..middleware import read_form
from .accounts import Viewer

SESSION_COOKIE = "hpoll_session"
#: Anonymous forms (sign-in) compare their hidden field with this cookie (double submit).
FORM_COOKIE = "hpoll_form"
VIEWER: str = "hpoll.viewer"
FORM_TOKEN: str = "hpoll.form_token"  # noqa: S105 (a request key, not a secret)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
type ViewerLookup = Callable[[web.Request, str], Awaitable[Viewer | None]]


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every dashboard response (pages, errors, static files) gets the headers; static files
    may be cached (their URLs carry a version)."""
    route = request.match_info.route.name or ""
    if not route.startswith("dashboard:"):
        return
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if route == "dashboard:static":
        response.headers["Cache-Control"] = "public, max-age=86400"


def is_secure(request: web.Request, public_url: str | None) -> bool:
    """Cookies get ``Secure`` when the relay is reached over TLS (directly or behind a proxy
    the operator declared through an https public URL)."""
    return request.secure or bool(public_url and public_url.startswith("https://"))


def set_cookie(
    response: web.StreamResponse,
    request: web.Request,
    public_url: str | None,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
) -> None:
    """An HttpOnly, SameSite=Lax cookie for the whole site."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=is_secure(request, public_url),
    )


def viewer(request: web.Request) -> Viewer:
    """The signed-in caregiver of a request that passed ``view(signed_in=True)``."""
    found: Viewer = request[VIEWER]
    return found


def form_token(request: web.Request) -> str:
    """The token this request's forms must send back."""
    token: str = request[FORM_TOKEN]
    return token


def view(
    lookup: ViewerLookup, public_url: Callable[[web.Request], str | None], *, signed_in: bool
) -> Callable[[Handler], Handler]:
    """Wrap a page handler: session, CSRF, headers (see the module's docstring)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            found: Viewer | None = None
            if token := request.cookies.get(SESSION_COOKIE):
                found = await lookup(request, token)
            request[VIEWER] = found
            anonymous_token = request.cookies.get(FORM_COOKIE, "")
            new_form_cookie = found is None and len(anonymous_token) < 32
            if new_form_cookie:
                anonymous_token = secrets.token_urlsafe(32)
            request[FORM_TOKEN] = found.csrf_token if found else anonymous_token
            if signed_in and found is None:
                if request.method == "GET":
                    response: web.StreamResponse = web.Response(
                        status=303, headers={"Location": "/signin"}
                    )
                else:
                    response = web.Response(status=403, text="Sign in first.")
            elif request.method == "POST" and not await _csrf_ok(request):
                response = web.Response(
                    status=403,
                    text="This form has expired or did not come from this site. "
                    "Go back, reload the page and try again.",
                )
            else:
                response = await handler(request)
            if new_form_cookie:
                set_cookie(response, request, public_url(request), FORM_COOKIE, anonymous_token)
            return response

        return run

    return wrap


async def _csrf_ok(request: web.Request) -> bool:
    form = await read_form(request)
    sent = form.get("csrf")
    expected = request[FORM_TOKEN]
    return isinstance(sent, str) and bool(expected) and hmac.compare_digest(sent, expected)
