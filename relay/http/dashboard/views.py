"""The caregivers' pages: Homes, Home, Me, sign-in and sign-out.

Server-rendered through Jinja2 (autoescaped: home, room and device names are the homes' own
words and render as text). Every handler goes through ``security.view``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
import aiohttp_jinja2
import apprise
import jinja2
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import Admin, AdminError, check_time
from relay.clock import utcnow
from relay.messages.compose import test_message
from relay.notifications.outbox import Sender
from relay.notifications.send import deliver
from relay.ratelimit import RateLimiter
from relay.secretbox import SecretBox, SecretBoxError, SecretKeyError

from ..middleware import read_form
from . import queries
from .accounts import SESSION_ABSOLUTE, AccountError, Accounts, Viewer
from .security import SESSION_COOKIE, VIEWER, add_headers, form_token, set_cookie, view, viewer
from .usual import UsualBands

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
#: The Homes page asks for fresh rows this often (seconds; the issue allows up to 60).
REFRESH_SECONDS = 30
#: Sign-in attempts per client address: a burst of 10, then one every 6 seconds.
SIGN_IN_RATE, SIGN_IN_BURST = 1 / 6, 10


@dataclass
class Dashboard:
    """What the pages share."""

    engine: AsyncEngine
    public_url: str | None
    #: The relay's secret keys (read only to send a caregiver a test message).
    keys: Callable[[], SecretBox]
    #: How a test message is sent (the relay's: its dispatcher's threads, not the event loop's
    #: few shared ones).
    send: Sender = deliver
    accounts: Accounts = field(init=False)
    bands: UsualBands = field(init=False)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(SIGN_IN_RATE, SIGN_IN_BURST))
    _box: SecretBox | None = None

    def __post_init__(self) -> None:
        self.accounts = Accounts(self.engine)
        self.bands = UsualBands(self.engine)

    @property
    def box(self) -> SecretBox:
        """The relay's secret key (only needed to send a caregiver a test message)."""
        if self._box is None:
            self._box = self.keys()
        return self._box


DASHBOARD: web.AppKey[Dashboard] = web.AppKey("dashboard", Dashboard)
#: The dashboard's own Jinja2 environment (the relay's other pages have theirs).
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("dashboard_templates", jinja2.Environment)


def _dashboard(request: web.Request) -> Dashboard:
    return request.app[DASHBOARD]


async def _lookup(request: web.Request, token: str) -> Viewer | None:
    return await _dashboard(request).accounts.viewer(token)


def _public_url(request: web.Request) -> str | None:
    return _dashboard(request).public_url


def page(*, signed_in: bool = True) -> Callable[..., Any]:
    """``security.view`` bound to this app's session lookup."""
    return view(_lookup, _public_url, signed_in=signed_in)


def _render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    context.setdefault("viewer", request.get(VIEWER))
    context["csrf"] = form_token(request)
    return aiohttp_jinja2.render_template(
        template, request, context, status=status, app_key=TEMPLATES
    )


def _message(request: web.Request, title: str, text: str, status: int = 200) -> web.Response:
    return _render(request, "message.html", {"title": title, "text": text}, status)


def not_found(request: web.Request) -> web.Response:
    """The same answer for a home that does not exist and one the viewer may not see."""
    return _message(request, "Not found", "There is no such page among your homes.", 404)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


# ---- Homes ------------------------------------------------------------------------------------


async def _homes_context(request: web.Request) -> dict[str, Any]:
    dashboard, now = _dashboard(request), utcnow()
    async with dashboard.engine.connect() as connection:
        lines = await queries.homes_overview(connection, viewer(request), dashboard.bands, now)
    total = len(lines)
    search = request.query.get("q", "").strip()[:100]
    show = request.query.get("show", "all")
    if search:
        folded = search.casefold()
        lines = [line for line in lines if folded in line.name.casefold()]
    if show == "attention":
        lines = [line for line in lines if line.rank <= queries.ATTENTION]
    elif show == "normal":
        lines = [line for line in lines if line.rank > queries.ATTENTION]
    else:
        show = "all"
    counts = [0, 0, 0, 0]
    for line in lines:
        counts[line.rank] += 1
    return {
        "lines": lines,
        "total": total,
        "search": search,
        "show": show,
        "counts": counts,
        "now": now,
        "refresh": REFRESH_SECONDS,
    }


@page()
async def homes(request: web.Request) -> web.Response:
    """Every home the caregiver may see, worst first."""
    return _render(request, "homes.html", await _homes_context(request))


@page()
async def homes_rows(request: web.Request) -> web.Response:
    """Only the Homes table (the page's script swaps it in every ``REFRESH_SECONDS``)."""
    return _render(request, "homes_rows.html", await _homes_context(request))


# ---- Home -------------------------------------------------------------------------------------


@page()
async def home(request: web.Request) -> web.Response:
    """One home: today's timeline, four weeks, devices, alerts, messages."""
    dashboard, now = _dashboard(request), utcnow()
    async with dashboard.engine.connect() as connection:
        detail = await queries.home_detail(
            connection, viewer(request), request.match_info["home_id"], dashboard.bands, now
        )
    if detail is None:
        return not_found(request)
    return _render(request, "home.html", {"d": detail, "now": now})


@page()
async def acknowledge(request: web.Request) -> web.Response:
    """The Home page's acknowledge button: the same acknowledgement as the message's link."""
    dashboard, who = _dashboard(request), viewer(request)
    try:
        alert_id = int(request.match_info["alert_id"])
    except ValueError:
        return not_found(request)
    home_id = request.match_info["home_id"]
    async with dashboard.engine.connect() as connection:
        if await queries.alert_home(connection, who, alert_id) != home_id:
            return not_found(request)
    try:
        await Admin(dashboard.engine).acknowledge(alert_id, by=who.name)
    except AdminError:
        return not_found(request)
    return _redirect(f"/homes/{home_id}#alerts")


# ---- Me ---------------------------------------------------------------------------------------


def describe_channel(url: str) -> str:
    """The caregiver's channel as Apprise shows it in privacy mode (passwords masked)."""
    plugin = apprise.Apprise.instantiate(url)
    if not plugin:
        return "a channel Apprise no longer accepts"
    shown = urlsplit(str(plugin.url(privacy=True)))  # type: ignore[no-untyped-call]
    return f"{plugin.service_name}: {shown.scheme}://{shown.netloc}{shown.path}"


async def _channel(dashboard: Dashboard, caregiver_id: int) -> tuple[str, str | None]:
    """(description, decrypted URL or None when there is no key or it does not fit)."""
    try:
        _, url = await Admin(dashboard.engine, dashboard.box).caregiver_url(str(caregiver_id))
    except (SecretBoxError, SecretKeyError) as err:
        return f"unreadable: {err}", None
    return describe_channel(url), url


async def _me_page(
    request: web.Request, note: str | None = None, status: int = 200
) -> web.Response:
    dashboard = _dashboard(request)
    channel, _ = await _channel(dashboard, viewer(request).caregiver_id)
    async with dashboard.engine.connect() as connection:
        mine = await queries.me(connection, viewer(request), channel)
    return _render(request, "me.html", {"me": mine, "note": note}, status)


@page()
async def me(request: web.Request) -> web.Response:
    """The caregiver's own settings."""
    return await _me_page(request)


@page()
async def send_test(request: web.Request) -> web.Response:
    """Send a test message through the caregiver's own channel."""
    dashboard, who = _dashboard(request), viewer(request)
    channel, url = await _channel(dashboard, who.caregiver_id)
    if url is None:
        return await _me_page(request, f"Cannot send: the channel is {channel}.", 500)
    result = await dashboard.send(url, test_message(who.name))
    text = "Test message sent." if result.ok else f"The test message failed: {result.detail}"
    return await _me_page(request, text, 200 if result.ok else 502)


@page()
async def set_quiet(request: web.Request) -> web.Response:
    """Quiet hours (non-urgent alerts wait until they end)."""
    form = await read_form(request)
    who = viewer(request)
    admin = Admin(_dashboard(request).engine)
    try:
        if form.get("quiet") == "off":
            await admin.set_quiet_hours(str(who.caregiver_id), None, None)
        else:
            start, end = check_time(form.get("start", "")), check_time(form.get("end", ""))
            await admin.set_quiet_hours(str(who.caregiver_id), start, end)
    except AdminError as err:
        return await _me_page(request, str(err), 400)
    return _redirect("/me")


@page()
async def set_digest(request: web.Request) -> web.Response:
    """Several homes' summaries in one message, or one each."""
    form = await read_form(request)
    await Admin(_dashboard(request).engine).set_digest(
        str(viewer(request).caregiver_id), form.get("digest") == "on"
    )
    return _redirect("/me")


@page()
async def set_password(request: web.Request) -> web.Response:
    """Set, change or remove the optional password."""
    form = await read_form(request)
    dashboard, who = _dashboard(request), viewer(request)
    if form.get("remove") == "yes":
        await dashboard.accounts.set_password(who.caregiver_id, None)
        return await _me_page(request, "Password removed: sign in with a link from now on.")
    if form.get("password", "") != form.get("repeat", ""):
        return await _me_page(request, "The two passwords differ.", 400)
    try:
        await dashboard.accounts.set_password(who.caregiver_id, form.get("password", ""))
    except AccountError as err:
        return await _me_page(request, str(err), 400)
    return await _me_page(request, "Password saved.")


@page()
async def sign_out_everywhere(request: web.Request) -> web.Response:
    """End every session of this caregiver, this one included."""
    await _dashboard(request).accounts.end_all_sessions(viewer(request).caregiver_id)
    return _signed_out(request)


@page()
async def sign_out(request: web.Request) -> web.Response:
    """End this browser's session."""
    await _dashboard(request).accounts.end_session(viewer(request).session_id)
    return _signed_out(request)


def _signed_out(request: web.Request) -> web.Response:
    response = _redirect("/signin?out=1")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# ---- Sign-in ----------------------------------------------------------------------------------


def _limited(request: web.Request) -> web.Response | None:
    wait = _dashboard(request).limiter.acquire(request.remote or "?")
    if wait is None:
        return None
    response = _message(
        request, "Too many attempts", f"Too many sign-in attempts; wait {wait:.0f} s.", 429
    )
    response.headers["Retry-After"] = str(int(wait))
    return response


@page(signed_in=False)
async def sign_in_page(request: web.Request) -> web.Response:
    """Password sign-in, and how to get a link."""
    if request.get(VIEWER) is not None:
        return _redirect("/")
    return _render(request, "signin.html", {"out": "out" in request.query, "error": None})


@page(signed_in=False)
async def sign_in_password(request: web.Request) -> web.Response:
    """Name and password."""
    if limited := _limited(request):
        return limited
    form = await read_form(request)
    dashboard = _dashboard(request)
    try:
        caregiver_id = await dashboard.accounts.check_password(
            form.get("name", "")[:200], form.get("password", "")[:1000]
        )
    except AccountError as err:
        return _render(request, "signin.html", {"out": False, "error": str(err)}, 401)
    return await _start_session(request, caregiver_id)


@page(signed_in=False)
async def link_page(request: web.Request) -> web.Response:
    """The one-time link from a message: a button, because chat apps fetch links for previews
    (a GET never signs in nor uses the link up)."""
    return _render(request, "link.html", {"token": request.match_info["token"]})


@page(signed_in=False)
async def link_sign_in(request: web.Request) -> web.Response:
    """Use the one-time link."""
    if limited := _limited(request):
        return limited
    try:
        caregiver_id = await _dashboard(request).accounts.redeem_link(request.match_info["token"])
    except AccountError as err:
        return _message(
            request, "Link not valid", f"{err}. Ask for a new one (links last 15 minutes).", 400
        )
    return await _start_session(request, caregiver_id)


async def _start_session(request: web.Request, caregiver_id: int) -> web.Response:
    """A new session token on every sign-in (the old one, if any, ends)."""
    dashboard = _dashboard(request)
    new = await dashboard.accounts.start_session(
        caregiver_id, replaces=request.cookies.get(SESSION_COOKIE)
    )
    response = _redirect("/")
    set_cookie(
        response,
        request,
        dashboard.public_url,
        SESSION_COOKIE,
        new.token,
        max_age=int(SESSION_ABSOLUTE.total_seconds()),
    )
    return response


FILTERS: dict[str, Callable[..., str]] = {"ago": queries.ago, "when_local": queries.when_local}


def setup(app: web.Application) -> None:
    """Templates, static files and every page route on the relay's application (the
    ``DASHBOARD`` state is set when the app starts, with its engine)."""
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        filters=FILTERS,
        app_key=TEMPLATES,
    )
    routes = [
        ("GET", "/", homes),
        ("GET", "/fragments/homes", homes_rows),
        ("GET", "/homes/{home_id}", home),
        ("POST", "/homes/{home_id}/alerts/{alert_id}/ack", acknowledge),
        ("GET", "/me", me),
        ("POST", "/me/test", send_test),
        ("POST", "/me/quiet", set_quiet),
        ("POST", "/me/digest", set_digest),
        ("POST", "/me/password", set_password),
        ("POST", "/me/sign-out-everywhere", sign_out_everywhere),
        ("POST", "/sign-out", sign_out),
        ("GET", "/signin", sign_in_page),
        ("POST", "/signin", sign_in_password),
        ("GET", "/signin/{token}", link_page),
        ("POST", "/signin/{token}", link_sign_in),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler, name=f"dashboard:{handler.__name__}")
    app.router.add_static("/static/", STATIC, name="dashboard:static", append_version=True)
    app.on_response_prepare.append(add_headers)
