"""The relay's HTTP API: report ingest, home status, health, metrics, OpenAPI, acknowledgement."""

from __future__ import annotations

import asyncio
from pathlib import Path
import time
from zoneinfo import ZoneInfo

from aiohttp import hdrs, web
import aiohttp_jinja2
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ..admin import Admin, AdminError
from ..clock import utcnow
from ..ingest import StorageError, UnstorableError, incoming
from ..messages import compose
from ..messages.document import render_fragment
from ..messages.facts import AlertFacts, HomeFacts
from ..schema import BodyError, ReportError, decode_report
from ..storage.errors import describe
from .auth import authorized, bearer_is, refusal_wait, refused, too_many_refusals
from .middleware import problem, read_form, unavailable
from .queries import home_status, notification_gauges
from .state import RELAY, Relay

OPENAPI = Path(__file__).resolve().parent.parent / "openapi.json"


def _reject(
    request: web.Request,
    reason: str,
    response: web.Response,
    *,
    unread: bool = False,
    read: int = 0,
) -> web.Response:
    request.app[RELAY].metrics.rejected[reason] += 1
    return refused(request, response, unread=unread, read=read)


def _too_large(request: web.Request) -> web.Response:
    return _reject(
        request,
        "too_large",
        problem(413, "Payload Too Large", "the report exceeds the size limit"),
        unread=True,
    )


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def post_report(request: web.Request) -> web.StreamResponse:
    """Store one report; 202 only once it is committed."""
    relay = request.app[RELAY]
    started = time.perf_counter()
    try:
        if (
            request.content_length is not None
            and request.content_length > relay.settings.max_body_bytes
        ):
            return _too_large(request)
        return await _store_report(request)
    finally:
        relay.metrics.observe_latency(time.perf_counter() - started)


#: Bodies longer than this are parsed and validated in a worker thread.
PARSE_INLINE_CHARS = 64 * 1024


@authorized()
async def _store_report(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    home_id: str = request["home_id"]
    if (blocked := refusal_wait(request, home_only=True)) is not None:
        return await too_many_refusals(request, blocked)
    # A body without a Content-Type is read as JSON (older clients); any other type is refused.
    if hdrs.CONTENT_TYPE in request.headers and not _is_json(request.content_type):
        return _reject(
            request,
            "unsupported_media_type",
            problem(415, "Unsupported Media Type", "send the report as application/json"),
            unread=True,
        )
    # The home's budget is spent before its body is read: a home sending garbage in a loop
    # is stopped as cheaply as one sending valid reports.
    if (wait := relay.limiter.acquire(home_id)) is not None:
        response = problem(429, "Too Many Requests", f"slow down; retry in {wait:.0f} s")
        response.headers["Retry-After"] = str(int(wait))
        response.force_close()
        relay.metrics.rejected["rate_limited"] += 1
        return response
    try:
        body = await _body(request, relay.settings.body_timeout)
    except web.HTTPRequestEntityTooLarge:
        return _too_large(request)
    except TimeoutError:
        return _reject(
            request,
            "timeout",
            problem(408, "Request Timeout", "the body did not arrive in time"),
            unread=True,
        )
    except ValueError:  # not UTF-8
        return _reject(
            request, "invalid_json", problem(400, "Bad Request", "the body is not UTF-8")
        )
    except ConnectionResetError:
        # The client went away mid-upload: nothing was stored, nobody is left to answer.
        return _reject(request, "disconnected", problem(400, "Bad Request", "connection lost"))
    try:
        if len(body) > PARSE_INLINE_CHARS:
            # A big body takes milliseconds to parse: in a worker thread, one at a time, so
            # the event loop gets its turn between them.
            async with relay.big_parses:
                report = await asyncio.to_thread(decode_report, body)
        else:
            report = decode_report(body)
    except ReportError as err:
        return _reject(
            request,
            "invalid",
            problem(422, "Unprocessable Content", str(err), field=err.field),
            read=len(body),
        )
    except BodyError as err:
        return _reject(
            request, "invalid_json", problem(400, "Bad Request", str(err)), read=len(body)
        )
    if report.home_id != home_id:
        return _reject(
            request,
            "forbidden",
            problem(403, "Forbidden", "this token belongs to another home", field="home_id"),
        )
    try:
        stored = incoming(home_id, body, report)
        outcome = await relay.writer.submit(stored)
    except UnstorableError as err:
        return _reject(request, "unstorable", problem(422, "Unprocessable Content", str(err)))
    except StorageError as err:
        relay.metrics.rejected["storage"] += 1
        return unavailable(str(err))
    if outcome == "conflict":
        return _reject(
            request,
            "conflict",
            problem(
                409,
                "Conflict",
                "this report_id was stored with a different body; a new report needs a new id",
                field="report_id",
            ),
        )
    if outcome == "duplicate":
        relay.metrics.duplicates += 1
        return _answer(200, "duplicate", stored.report_id)
    relay.metrics.accepted += 1
    return _answer(202, "stored", stored.report_id)


async def _body(request: web.Request, seconds: float) -> str:
    """The body as text, waiting at most ``seconds`` for it to arrive. A report's body has
    usually arrived with its headers: then nothing waits, and no timer is set."""
    if request.content.is_eof():
        return await request.text()
    async with asyncio.timeout(seconds):
        return await request.text()


def _answer(status: int, outcome: str, report_id: str) -> web.Response:
    """``{"status": outcome, "report_id": …}`` as ``json.dumps`` writes it, without building
    a dict to dump: a UUID's canonical text needs no escaping."""
    return web.Response(
        status=status,
        text=f'{{"status": "{outcome}", "report_id": "{report_id}"}}',
        content_type="application/json",
    )


@authorized(admin=True)
async def get_home(request: web.Request) -> web.Response:
    """A home's latest state: its own token or the admin token."""
    relay = request.app[RELAY]
    wanted = request.match_info["home_id"]
    if not request.get("admin") and request["home_id"] != wanted:
        return problem(403, "Forbidden", "this token belongs to another home")
    status = await home_status(relay.engine, wanted)
    if status is None:
        return problem(404, "Not Found", "no such home")
    return web.json_response(status)


@authorized()
async def get_own_home(request: web.Request) -> web.Response:
    """Which home this token belongs to (lets a client check its token)."""
    status = await home_status(request.app[RELAY].engine, request["home_id"])
    assert status is not None  # the token row would be gone with the home (cascade)
    return web.json_response(
        {"id": status["id"], "name": status["name"], "timezone": status["timezone"]}
    )


#: /healthz commits a probe at most this often (a flood of health checks is not a write load).
PROBE_EVERY = 1.0


async def _store_failure(relay: Relay) -> str | None:
    """Why the store cannot serve now: reads (token lookups) or a committed write."""
    try:
        async with relay.engine.connect() as connection:
            await connection.scalar(select(1))
    except (SQLAlchemyError, OSError) as err:
        return f"unreachable ({describe(err)})"
    failure: str | None = await relay.writer.probe()
    return failure


async def healthz(request: web.Request) -> web.Response:
    """200 when the store can commit a write now, 503 saying why not."""
    relay = request.app[RELAY]
    async with relay.probe_lock:
        last = relay.probed
        if last is None or time.monotonic() - last[0] >= PROBE_EVERY:
            last = relay.probed = (time.monotonic(), await _store_failure(relay))
    if (failure := last[1]) is not None:
        return unavailable(f"the database cannot commit: {failure}")
    return web.json_response({"status": "ok", "pending_reports": relay.writer.pending})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format (behind HPOLL_RELAY_METRICS_TOKEN when it is set)."""
    relay = request.app[RELAY]
    if relay.settings.metrics_token and not bearer_is(request, relay.settings.metrics_token):
        response = problem(401, "Unauthorized", "/metrics needs the metrics token")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    gauges: dict[str, float] = {"hpoll_ingest_pending": relay.writer.pending}
    try:
        gauges |= await notification_gauges(relay.engine)
    except (SQLAlchemyError, OSError):
        relay.metrics.db_errors += 1
    if (notifier := relay.notifier) is not None:
        gauges["hpoll_notifications_sent_total"] = notifier.dispatcher.sent
        gauges["hpoll_notification_attempts_failed_total"] = notifier.dispatcher.failed
        gauges["hpoll_notify_tick_errors_total"] = notifier.errors
        gauges["hpoll_plan_running_seconds"] = round(notifier.planning_for(), 3)
    text = relay.metrics.render(gauges)
    return web.Response(
        text=text,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Version": "0.0.4"},
    )


async def openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI document."""
    return web.Response(text=OPENAPI.read_text(encoding="utf-8"), content_type="application/json")


def _ack_page(
    request: web.Request, state: str, status: int = 200, **context: object
) -> web.Response:
    return aiohttp_jinja2.render_template(
        "ack.html", request, {"state": state, **context}, status=status
    )


async def _ack_view(request: web.Request, code: str, *, pressed: bool = False) -> web.Response:
    """The alert behind a caregiver's link: the home, what happened, since when, who is on it."""
    relay = request.app[RELAY]
    try:
        alert, home, caregiver = await Admin(relay.engine).ack_view(
            int(request.match_info["alert_id"]), code
        )
    except (ValueError, AdminError):
        return _ack_page(request, "unknown", status=404)
    ended = (alert.clear_since or alert.resolved_at) if alert.state == "resolved" else None
    document = compose.ack_page(
        AlertFacts.of(alert, ended),
        HomeFacts(home.name, ZoneInfo(home.timezone)),
        caregiver.name,
        utcnow(),
        pressed=pressed,
    )
    return _ack_page(
        request,
        "ask" if alert.state == "open" else "done",
        title=document.title,
        body=Markup(render_fragment(document)),  # noqa: S704 (every text in it is escaped)
        code=code,
    )


async def ack_page(request: web.Request) -> web.Response:
    """The link in an urgent message: the alarm, and a button. A GET never acknowledges,
    because chat apps fetch links for previews."""
    return await _ack_view(request, request.query.get("code", ""))


async def ack_alert(request: web.Request) -> web.Response:
    """Acknowledge with a caregiver's own link: who acknowledged is recorded."""
    relay = request.app[RELAY]
    code = (await read_form(request)).get("code", "")
    try:
        await Admin(relay.engine).acknowledge(int(request.match_info["alert_id"]), code=code)
    except (ValueError, AdminError):
        return _ack_page(request, "unknown", status=404)
    return await _ack_view(request, code, pressed=True)
