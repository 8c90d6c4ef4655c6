"""The relay's HTTP API (aiohttp): report ingest, home status, health, metrics, OpenAPI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
import hmac
import html
import itertools
import json
import logging
from pathlib import Path
import re
import secrets
import time
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from . import logs
from .admin import Admin, AdminError
from .clock import utcnow
from .config import Settings
from .ingest import IngestWriter, StorageError
from .metrics import Metrics
from .models import ActivityBucket, Caregiver, DeviceState, Home, HomeToken, Notification
from .notifier import Notifier
from .ratelimit import RateLimiter
from .schema import ReportError, validate_report
from .tokens import token_hash

_LOGGER = logging.getLogger("relay.http")
OPENAPI = Path(__file__).resolve().parent / "openapi.json"
PROBLEM = "application/problem+json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: Request ids only need to be unique: a per-process random prefix and a counter (a uuid4 per
#: request cost an os.urandom system call each, measurable at 1,000 requests a second).
_RID_PREFIX = secrets.token_hex(4) + "-"
_RID_COUNTER = itertools.count(1)

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Relay:
    """What the request handlers share."""

    settings: Settings
    engine: AsyncEngine
    writer: IngestWriter
    metrics: Metrics
    limiter: RateLimiter
    notifier: Notifier | None = None
    #: token hash -> (home id, monotonic time it was confirmed); valid tokens only.
    token_cache: dict[str, tuple[str, float]] = field(default_factory=dict)


RELAY: web.AppKey[Relay] = web.AppKey("relay")


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    """An RFC 9457 problem response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return web.Response(status=status, text=json.dumps(body), content_type=PROBLEM)


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


async def _home_for_token(relay: Relay, request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or len(header) > 300:
        return None
    digest = token_hash(header[7:].strip())
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


def _is_admin(relay: Relay, request: web.Request) -> bool:
    expected = relay.settings.admin_token
    header = request.headers.get("Authorization", "")
    if not expected or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(token_hash(header[7:].strip()), token_hash(expected))


def _reject(relay: Relay, reason: str, response: web.Response) -> web.Response:
    relay.metrics.rejected[reason] += 1
    return response


async def post_report(request: web.Request) -> web.Response:
    """Store one report; 202 only once it is committed."""
    relay = request.app[RELAY]
    started = time.perf_counter()
    try:
        return await _ingest(relay, request)
    finally:
        relay.metrics.observe_latency(time.perf_counter() - started)


async def _ingest(relay: Relay, request: web.Request) -> web.Response:
    if (
        request.content_length is not None
        and request.content_length > relay.settings.max_body_bytes
    ):
        return _reject(
            relay,
            "too_large",
            problem(413, "Payload Too Large", "the report exceeds the size limit"),
        )
    home_id = await _home_for_token(relay, request)
    if home_id is None:
        return _reject(
            relay,
            "unauthorized",
            problem(401, "Unauthorized", "missing, unknown or revoked home token"),
        )
    request["home_id"] = home_id
    try:
        body = await request.text()
        raw = json.loads(body)
    except web.HTTPRequestEntityTooLarge:
        return _reject(
            relay,
            "too_large",
            problem(413, "Payload Too Large", "the report exceeds the size limit"),
        )
    except ValueError:
        return _reject(relay, "invalid_json", problem(400, "Bad Request", "the body is not JSON"))
    except ConnectionResetError:
        # The client went away mid-upload: nothing was stored, nobody is left to answer.
        return _reject(relay, "disconnected", problem(400, "Bad Request", "connection lost"))
    try:
        report = validate_report(raw)
    except ReportError as err:
        return _reject(
            relay, "invalid", problem(422, "Unprocessable Content", str(err), field=err.field)
        )
    if report["home_id"] != home_id:
        return _reject(
            relay,
            "forbidden",
            problem(403, "Forbidden", "this token belongs to another home", field="home_id"),
        )
    if (wait := relay.limiter.acquire(home_id)) is not None:
        response = problem(429, "Too Many Requests", f"slow down; retry in {wait:.0f} s")
        response.headers["Retry-After"] = str(int(wait))
        return _reject(relay, "rate_limited", response)
    try:
        outcome = await relay.writer.submit(home_id, body, report)
    except StorageError as err:
        response = problem(503, "Service Unavailable", str(err))
        response.headers["Retry-After"] = "5"
        return _reject(relay, "storage", response)
    if outcome == "duplicate":
        relay.metrics.duplicates += 1
        return web.json_response(
            {"status": "duplicate", "report_id": report["report_id"]}, status=200
        )
    relay.metrics.accepted += 1
    return web.json_response({"status": "stored", "report_id": report["report_id"]}, status=202)


async def get_home(request: web.Request) -> web.Response:
    """A home's latest state: its own token or the admin token."""
    relay = request.app[RELAY]
    wanted = request.match_info["home_id"]
    if not _is_admin(relay, request):
        home_id = await _home_for_token(relay, request)
        if home_id is None:
            return problem(401, "Unauthorized", "missing, unknown or revoked token")
        if home_id != wanted:
            return problem(403, "Forbidden", "this token belongs to another home")
    status = await home_status(relay.engine, wanted)
    if status is None:
        return problem(404, "Not Found", "no such home")
    return web.json_response(status)


async def get_own_home(request: web.Request) -> web.Response:
    """Which home this token belongs to (lets a client check its token)."""
    relay = request.app[RELAY]
    home_id = await _home_for_token(relay, request)
    if home_id is None:
        return problem(401, "Unauthorized", "missing, unknown or revoked token")
    status = await home_status(relay.engine, home_id)
    assert status is not None  # the token row would be gone with the home (cascade)
    return web.json_response(
        {"id": status["id"], "name": status["name"], "timezone": status["timezone"]}
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def home_status(engine: AsyncEngine, home_id: str) -> dict[str, Any] | None:
    """The JSON view of a home: bridge, devices, today's activity so far."""
    homes, devices, activity = Home.__table__, DeviceState.__table__, ActivityBucket.__table__
    async with engine.connect() as connection:
        home = (await connection.execute(select(homes).where(homes.c.id == home_id))).first()
        if home is None:
            return None
        rows = (
            await connection.execute(
                select(devices).where(devices.c.home_id == home_id).order_by(devices.c.name)
            )
        ).all()
        since = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        today = await connection.scalar(
            select(func.coalesce(func.sum(activity.c.count), 0)).where(
                activity.c.home_id == home_id, activity.c.bucket_start >= since
            )
        )
        last_activity = await connection.scalar(
            select(func.max(activity.c.last_at)).where(activity.c.home_id == home_id)
        )
    return {
        "id": home.id,
        "name": home.name,
        "timezone": home.timezone,
        "last_report_at": _iso(home.last_report_at),
        "bridge": {
            "reachable": home.bridge_reachable,
            "offline_since": _iso(home.bridge_offline_since),
        },
        "counters": home.counters or {},
        "activity": {"since_utc_midnight": int(today or 0), "last_at": _iso(last_activity)},
        "devices": [
            {
                "id": row.device_id,
                "name": row.name,
                "room": row.room,
                "kind": row.kind,
                "battery": row.battery,
                "battery_state": row.battery_state,
                "connectivity": row.connectivity,
                "offline_since": _iso(row.offline_since),
                "last_seen": _iso(row.last_seen),
                "updated_at": _iso(row.updated_at),
            }
            for row in rows
        ],
    }


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers, 503 otherwise."""
    relay = request.app[RELAY]
    try:
        async with relay.engine.connect() as connection:
            await connection.scalar(select(1))
    except (SQLAlchemyError, OSError) as err:
        return problem(503, "Service Unavailable", f"database unreachable: {type(err).__name__}")
    return web.json_response({"status": "ok", "pending_reports": relay.writer.pending})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format."""
    relay = request.app[RELAY]
    gauges: dict[str, float] = {"hpoll_ingest_pending": relay.writer.pending}
    try:
        async with relay.engine.connect() as connection:
            gauges["hpoll_notifications_pending"] = (
                await connection.scalar(
                    select(func.count()).where(Notification.status == "pending")
                )
                or 0
            )
            gauges["hpoll_notifications_failed"] = (
                await connection.scalar(select(func.count()).where(Notification.status == "failed"))
                or 0
            )
            gauges["hpoll_caregivers_failing"] = (
                await connection.scalar(
                    select(func.count()).where(Caregiver.failing_since.isnot(None))
                )
                or 0
            )
    except SQLAlchemyError:
        relay.metrics.db_errors += 1
    if (notifier := relay.notifier) is not None:
        gauges["hpoll_notifications_sent_total"] = notifier.dispatcher.sent
        gauges["hpoll_notification_attempts_failed_total"] = notifier.dispatcher.failed
        gauges["hpoll_notify_tick_errors_total"] = notifier.errors
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


_ACK_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>hpoll alert</title>
</head><body style="font-family: sans-serif; max-width: 32rem; margin: 2rem auto">
{content}</body></html>"""


def _page(content: str, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=_ACK_PAGE.format(content=content), content_type="text/html"
    )


async def ack_page(request: web.Request) -> web.Response:
    """The link in an urgent message: a page with a button. A GET never acknowledges, because
    chat apps fetch links for previews."""
    code = html.escape(request.query.get("code", ""), quote=True)
    alert_id = html.escape(request.match_info["alert_id"])
    return _page(
        f"<h1>Alert {alert_id}</h1><p>Acknowledge that you are looking into it? Nobody else "
        "in the chain will be called.</p>"
        f'<form method="post"><input type="hidden" name="code" value="{code}">'
        '<button type="submit" style="font-size: 1.2rem">I am on it</button></form>'
    )


async def ack_alert(request: web.Request) -> web.Response:
    """Acknowledge with the alert's code (from the message)."""
    relay = request.app[RELAY]
    form = await request.post()
    try:
        alert_id = int(request.match_info["alert_id"])
        alert = await Admin(relay.engine).acknowledge(
            alert_id, by="link", code=str(form.get("code", ""))
        )
    except (ValueError, AdminError):
        return _page("<h1>Unknown alert</h1><p>This link is not valid.</p>", status=404)
    if alert.state == "resolved":
        return _page("<h1>Already over</h1><p>This alert has resolved itself.</p>")
    return _page("<h1>Thank you</h1><p>The alert is acknowledged; the escalation stops here.</p>")


def add_routes(app: web.Application) -> None:
    """Every route of the API."""
    app.router.add_post("/api/v1/reports", post_report)
    app.router.add_get("/api/v1/home", get_own_home)
    app.router.add_get("/api/v1/homes/{home_id}", get_home)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/alerts/{alert_id}/ack", ack_page)
    app.router.add_post("/api/v1/alerts/{alert_id}/ack", ack_alert)
