"""The ingest API over real HTTP, on SQLite and PostgreSQL: every status code it promises."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent import interpreters
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import re
import time
from typing import Any
from unittest.mock import patch

from aiohttp.test_utils import TestClient
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import Admin, NewHome
from relay.app import create_app
from relay.config import Settings
from relay.http.state import RELAY
from relay.storage.db import create_engine
from relay.storage.models import ActivityBucket, DeviceState, Home, Report
from relay.storage.retention import prune
from tests.relay import in_writer
from tests.relay.conftest import ADMIN_TOKEN

type Client = TestClient[Any, Any]
OPENAPI = json.loads((Path(__file__).parents[2] / "relay" / "openapi.json").read_text())
SEEN: set[tuple[str, str, int]] = set()


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], engine: AsyncEngine, db_url: str) -> Client:
    settings = Settings(
        db_url=db_url,
        admin_token=ADMIN_TOKEN,
        max_body_bytes=64 * 1024,
        rate_per_second=1000,
        rate_burst=1000,
        notify_seconds=0,  # notifications have their own tests (test_notifications.py)
    )
    test_client: Client = await aiohttp_client(create_app(settings, engine))
    return test_client


@pytest.fixture
async def home(admin: Admin) -> NewHome:
    return await admin.add_home("Mum's flat", "Europe/Berlin")


async def _post(client: Client, token: str | None, body: Any, raw: bytes | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = raw if raw is not None else json.dumps(body).encode()
    async with client.post(
        "/api/v1/reports", data=data, headers={**headers, "Content-Type": "application/json"}
    ) as response:
        SEEN.add(("/api/v1/reports", "post", response.status))
        return response.status, await response.json(content_type=None), response.headers


async def _count(engine: AsyncEngine, model: Any) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(model)) or 0)


async def test_report_is_stored_once(
    client: Client, engine: AsyncEngine, home: NewHome, make_report: Callable[..., Any]
) -> None:
    report = make_report(home.id)
    status, body, headers = await _post(client, home.token, report)
    assert (status, body["status"]) == (202, "stored")
    assert headers["X-Request-ID"]
    status, body, _ = await _post(client, home.token, report)
    assert (status, body["status"]) == (200, "duplicate")
    assert await _count(engine, Report) == 1
    assert await _count(engine, DeviceState) == 2
    assert await _count(engine, ActivityBucket) == 1
    async with engine.connect() as connection:
        stored = await connection.scalar(select(Report.payload))
    assert stored == json.dumps(report)  # the body verbatim, as the home sent it


@pytest.mark.parametrize(
    ("mutate", "field", "text"),
    [
        (lambda r: r["devices"][0].update(battery=300), "devices.0.battery", "0 to 100"),
        (lambda r: r.update(schema=2), "schema", "unsupported schema version"),
        (
            lambda r: r.update(sent_at=(datetime.now(UTC) + timedelta(days=1)).isoformat()),
            "sent_at",
            "future",
        ),
        (lambda r: r.update(devices="all"), "devices", "list"),
        (lambda r: r.pop("counters"), "counters", "required"),
    ],
)
async def test_invalid_reports_get_422_naming_the_field(
    client: Client,
    engine: AsyncEngine,
    home: NewHome,
    make_report: Callable[..., Any],
    mutate: Callable[[dict[str, Any]], Any],
    field: str,
    text: str,
) -> None:
    report = make_report(home.id)
    mutate(report)
    status, body, _ = await _post(client, home.token, report)
    assert status == 422
    assert body["field"] == field
    assert text in body["detail"]
    assert await _count(engine, Report) == 0


async def test_auth_errors(
    client: Client, admin: Admin, home: NewHome, make_report: Callable[..., Any]
) -> None:
    report = make_report(home.id)
    assert (await _post(client, None, report))[0] == 401
    assert (await _post(client, "hpr_made_up", report))[0] == 401
    other = await admin.add_home("Dad's house", "America/New_York")
    status, body, _ = await _post(client, other.token, report)
    assert (status, body["field"]) == (403, "home_id")
    rotated = await admin.rotate_token(home.id)
    # A token newer than the relay's directory is found by the re-check its miss causes; that
    # check also drops the revoked one (without it, within HPOLL_RELAY_TOKEN_CACHE_SECONDS).
    assert (await _post(client, rotated.token, report))[0] == 202
    assert (await _post(client, home.token, report))[0] == 401


async def test_token_cache_bounds_how_long_a_revoked_token_works(
    aiohttp_client: Callable[..., Any],
    engine: AsyncEngine,
    db_url: str,
    admin: Admin,
    home: NewHome,
    make_report: Callable[..., Any],
) -> None:
    settings = Settings(db_url=db_url, token_cache_seconds=60)
    client: Client = await aiohttp_client(create_app(settings, engine))
    assert (await _post(client, home.token, make_report(home.id)))[0] == 202
    await admin.revoke_tokens(home.id)
    assert (await _post(client, home.token, make_report(home.id)))[0] == 202  # cached
    with patch("relay.http.directory.time.monotonic", return_value=time.monotonic() + 61):
        assert (await _post(client, home.token, make_report(home.id)))[0] == 401
    assert (await _post(client, "hpr_unknown", make_report(home.id)))[0] == 401


async def test_bad_bodies(client: Client, home: NewHome) -> None:
    status, body, _ = await _post(client, home.token, None, raw=b"{nope")
    assert (status, body["title"]) == (400, "Bad Request")
    status, body, _ = await _post(client, home.token, None, raw=b"[" + b"1," * 40000 + b"1]")
    assert status == 413
    assert body["status"] == 413


async def test_rate_limit(
    aiohttp_client: Callable[..., Any],
    engine: AsyncEngine,
    db_url: str,
    home: NewHome,
    make_report: Callable[..., Any],
) -> None:
    settings = Settings(db_url=db_url, rate_per_second=0.01, rate_burst=2)
    client: Client = await aiohttp_client(create_app(settings, engine))
    for _ in range(2):
        assert (await _post(client, home.token, make_report(home.id)))[0] == 202
    status, body, headers = await _post(client, home.token, make_report(home.id))
    assert status == 429
    assert int(headers["Retry-After"]) > 0
    assert "retry" in body["detail"]


async def test_storage_failure_acknowledges_nothing(
    client: Client, engine: AsyncEngine, home: NewHome, make_report: Callable[..., Any]
) -> None:
    writer = client.server.app[RELAY].writer
    await writer.in_writer(in_writer.fail_every_batch, "disk I/O error")
    try:
        status, body, headers = await _post(client, home.token, make_report(home.id))
    finally:
        await writer.in_writer(in_writer.heal)
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert "unavailable" in body["detail"]
    assert await _count(engine, Report) == 0


async def test_concurrent_reports_share_transactions(
    client: Client, engine: AsyncEngine, admin: Admin, make_report: Callable[..., Any]
) -> None:
    homes = [await admin.add_home(f"Home {n}", "Europe/Paris") for n in range(10)]
    reports = [(h, make_report(h.id)) for h in homes for _ in range(5)]
    results = await asyncio.gather(*(_post(client, h.token, r) for h, r in reports))
    assert [status for status, _, _ in results] == [202] * 50
    assert await _count(engine, Report) == 50
    relay = client.server.app[RELAY]
    assert relay.metrics.batches < 50  # group commit: several reports per transaction


async def test_device_state_follows_the_newest_report(
    client: Client, engine: AsyncEngine, home: NewHome, make_report: Callable[..., Any]
) -> None:
    now = datetime.now(UTC)
    first = make_report(home.id, sent_at=(now - timedelta(minutes=10)).isoformat())
    first["devices"][0]["connectivity"] = "disconnected"
    second = make_report(home.id, sent_at=(now - timedelta(minutes=5)).isoformat())
    second["devices"][0]["connectivity"] = "disconnected"
    second["devices"][0]["battery"] = 40
    late = make_report(home.id, sent_at=(now - timedelta(minutes=20)).isoformat())
    late["devices"][0]["battery"] = 99
    for report in (first, second, late):
        assert (await _post(client, home.token, report))[0] == 202
    async with client.get(
        f"/api/v1/homes/{home.id}", headers={"Authorization": f"Bearer {home.token}"}
    ) as response:
        status = await response.json()
    device = next(d for d in status["devices"] if d["id"] == first["devices"][0]["id"])
    assert device["battery"] == 40  # the late, older report did not win
    assert device["connectivity"] == "disconnected"
    assert datetime.fromisoformat(device["offline_since"]) == now - timedelta(minutes=10)
    back = make_report(home.id)
    assert (await _post(client, home.token, back))[0] == 202
    async with client.get(
        f"/api/v1/homes/{home.id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as response:
        status = await response.json()
    device = next(d for d in status["devices"] if d["id"] == first["devices"][0]["id"])
    assert device["connectivity"] == "connected"
    assert device["offline_since"] is None
    assert status["bridge"]["reachable"] is True
    assert status["counters"]["polls"] == 1440


async def test_activity_is_bucketed(
    client: Client, engine: AsyncEngine, home: NewHome, make_report: Callable[..., Any]
) -> None:
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    events = [
        {"room": "Kitchen", "sensor_id": "s1", "at": (base + timedelta(minutes=m)).isoformat()}
        for m in (1, 5, 14, 16)
    ] + [{"room": None, "sensor_id": "s2", "at": (base + timedelta(minutes=2)).isoformat()}]
    assert (await _post(client, home.token, make_report(home.id, activity=events[:2])))[0] == 202
    assert (await _post(client, home.token, make_report(home.id, activity=events[2:])))[0] == 202
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                select(
                    ActivityBucket.room,
                    ActivityBucket.bucket_start,
                    ActivityBucket.count,
                    ActivityBucket.first_at,
                    ActivityBucket.last_at,
                ).order_by(ActivityBucket.room, ActivityBucket.bucket_start)
            )
        ).all()
    assert [(r.room, r.bucket_start, r.count) for r in rows] == [
        ("", base, 1),
        ("Kitchen", base, 3),
        ("Kitchen", base + timedelta(minutes=15), 1),
    ]
    assert rows[1].first_at == base + timedelta(minutes=1)
    assert rows[1].last_at == base + timedelta(minutes=14)
    # The home keeps its newest activity for the alert rules; a late report with older
    # activity, or one without any, does not move it back.
    late = [{"room": "Hall", "sensor_id": "s3", "at": base.isoformat()}]
    assert (await _post(client, home.token, make_report(home.id, activity=late)))[0] == 202
    assert (await _post(client, home.token, make_report(home.id, activity=[])))[0] == 202
    async with engine.connect() as connection:
        last = await connection.scalar(select(Home.last_activity_at).where(Home.id == home.id))
    assert last == base + timedelta(minutes=16)


async def test_the_newest_verdict_is_kept_for_alerting(
    client: Client, engine: AsyncEngine, home: NewHome, make_report: Callable[..., Any]
) -> None:
    now = datetime.now(UTC)
    newer, older = make_report(home.id), make_report(home.id)
    newer["verdict"] = {**newer["verdict"], "state": "inactive", "reason": "not_up"}
    older["sent_at"] = (now - timedelta(minutes=5)).isoformat()
    assert (await _post(client, home.token, newer))[0] == 202
    assert (await _post(client, home.token, older))[0] == 202  # late: does not win
    async with engine.connect() as connection:
        stored = await connection.scalar(select(Home.verdict).where(Home.id == home.id))
    assert stored is not None
    assert (stored["state"], stored["reason"]) == ("inactive", "not_up")
    assert stored["since"] == "2026-07-27T18:33:10.223000+00:00"  # moments kept as ISO text


async def test_watching_begins_with_the_first_report(
    client: Client, engine: AsyncEngine, home: NewHome, make_report: Callable[..., Any]
) -> None:
    now = datetime.now(UTC)
    first = make_report(home.id, sent_at=(now - timedelta(minutes=10)).isoformat())
    async with engine.connect() as connection:
        assert await connection.scalar(select(Home.watching_since)) is None
    for report in (first, make_report(home.id)):
        assert (await _post(client, home.token, report))[0] == 202
        async with engine.connect() as connection:
            watching = await connection.scalar(select(Home.watching_since))
        assert watching == now - timedelta(minutes=10)


async def test_home_endpoints(client: Client, admin: Admin, home: NewHome) -> None:
    async def get(path: str, token: str | None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with client.get(path, headers=headers) as response:
            SEEN.add(
                (
                    path if "homes/" not in path else "/api/v1/homes/{home_id}",
                    "get",
                    response.status,
                )
            )
            return response.status, await response.json(content_type=None)

    other = await admin.add_home("Elsewhere", "Asia/Tokyo")
    assert (await get(f"/api/v1/homes/{home.id}", home.token))[0] == 200
    assert (await get(f"/api/v1/homes/{home.id}", other.token))[0] == 403
    assert (await get(f"/api/v1/homes/{home.id}", None))[0] == 401
    assert (await get("/api/v1/homes/h_nothere", ADMIN_TOKEN))[0] == 404
    status, body = await get(f"/api/v1/homes/{home.id}", ADMIN_TOKEN)
    assert (status, body["name"], body["last_report_at"]) == (200, "Mum's flat", None)
    assert await get("/api/v1/home", home.token) == (
        200,
        {"id": home.id, "name": "Mum's flat", "timezone": "Europe/Berlin"},
    )
    assert (await get("/api/v1/home", "nope"))[0] == 401


def test_latency_histogram_buckets_are_cumulative() -> None:
    """Each observation is counted in its own bucket; the exposition adds them up, as
    Prometheus reads ``le``: a bucket counts every observation up to its bound."""
    from relay.metrics import Histogram

    histogram = Histogram("h", "test", (0.1, 1.0, 10.0))
    for seconds in (0.05, 0.1, 0.5, 0.5, 2.0, 20.0):
        histogram.observe(seconds)
    assert histogram.lines()[2:] == [
        'h_bucket{le="0.1"} 2',
        'h_bucket{le="1.0"} 4',
        'h_bucket{le="10.0"} 5',
        'h_bucket{le="+Inf"} 6',
        "h_sum 23.15",
        "h_count 6",
    ]


async def test_health_metrics_and_openapi(
    client: Client, home: NewHome, make_report: Callable[..., Any]
) -> None:
    await _post(client, home.token, make_report(home.id))
    await _post(client, "bad", make_report(home.id))
    async with client.get("/healthz") as response:
        assert response.status == 200
        SEEN.add(("/healthz", "get", 200))
    async with client.get("/metrics") as response:
        text = await response.text()
        SEEN.add(("/metrics", "get", 200))
    assert "hpoll_reports_accepted_total 1" in text
    assert 'hpoll_reports_rejected_total{reason="unauthorized"} 1' in text
    assert "hpoll_ingest_seconds_count 2" in text
    # The notification side is visible too (its tests: test_notifications.py).
    assert "hpoll_notifications_pending 0" in text
    assert "hpoll_notifications_failed 0" in text
    assert "hpoll_caregivers_failing 0" in text
    assert "hpoll_notifications_sent_total 0" in text
    # A pass may be running at this moment (the relay plans as it starts): its age, or 0.
    assert re.search(r"^hpoll_plan_running_seconds [0-9.]+$", text, re.MULTILINE)
    async with client.get("/api/v1/openapi.json") as response:
        assert await response.json() == OPENAPI
        SEEN.add(("/api/v1/openapi.json", "get", 200))


async def test_health_fails_without_database(
    aiohttp_client: Callable[..., Any], engine: AsyncEngine, db_url: str
) -> None:
    client: Client = await aiohttp_client(create_app(Settings(db_url=db_url), engine))
    broken = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    client.server.app[RELAY].engine = broken
    async with client.get("/healthz") as response:
        assert response.status == 503
        SEEN.add(("/healthz", "get", 503))
    await broken.dispose()


async def test_retention_prunes_raw_reports_only(
    client: Client, engine: AsyncEngine, home: NewHome, make_report: Callable[..., Any]
) -> None:
    assert (await _post(client, home.token, make_report(home.id)))[0] == 202
    assert (await prune(engine, 30)).reports == 0
    assert (await prune(engine, -1)).reports == 1
    assert await _count(engine, Report) == 0
    assert await _count(engine, DeviceState) == 2


async def test_acknowledge_by_link(
    client: Client, engine: AsyncEngine, home: NewHome, admin: Admin
) -> None:
    from sqlalchemy import insert

    from relay.storage.models import AckLink, Alert, table
    from relay.tokens import token_hash

    ann = await admin.add_caregiver("Ann", "json://relay.example/")

    async with engine.begin() as connection:
        await connection.execute(
            insert(table(Alert)).values(
                home_id=home.id,
                kind="inactivity",
                subject="",
                state="open",
                opened_at=datetime.now(UTC),
                urgent=True,
            )
        )
        await connection.execute(
            insert(table(AckLink)).values(
                alert_id=1,
                caregiver_id=ann,
                code_hash=token_hash("c0de"),
                created_at=datetime.now(UTC),
            )
        )
    # Opening the link (or a chat app's preview of it) shows the alarm and a button.
    response = await client.get("/api/v1/alerts/1/ack", params={"code": "c0de"})
    page = await response.text()
    SEEN.add(("/api/v1/alerts/{alert_id}/ack", "get", response.status))
    assert response.status == 200
    assert "Mum&#39;s flat: no movement since" in page
    assert "This link is yours, Ann." in page
    assert 'value="c0de"' in page
    response = await client.get("/api/v1/alerts/1/ack", params={"code": 'c0de"><script>'})
    SEEN.add(("/api/v1/alerts/{alert_id}/ack", "get", response.status))
    assert response.status == 404  # a wrong code shows nothing of the home
    assert "Mum" not in await response.text()
    assert (await Admin(engine).list_alerts())[0].state == "open"
    for code, status, state in (("wrong", 404, "open"), ("c0de", 200, "acked")):
        response = await client.post("/api/v1/alerts/1/ack", data={"code": code})
        SEEN.add(("/api/v1/alerts/{alert_id}/ack", "post", response.status))
        assert response.status == status
        assert (await Admin(engine).list_alerts())[0].state == state
    assert "Thank you, Ann." in await response.text()
    assert (await Admin(engine).list_alerts())[0].acked_by == "Ann"
    # The link again: Ann is on it, and no button.
    page = await (await client.get("/api/v1/alerts/1/ack", params={"code": "c0de"})).text()
    assert "Ann is looking into it" in page
    assert "<button" not in page
    response = await client.post("/api/v1/alerts/x/ack", data={"code": "c0de"})
    assert response.status == 404


def test_openapi_documents_every_route_and_status() -> None:
    """Runs last in this module: every (path, method, status) the tests saw is documented."""
    app = create_app(Settings())
    routes = {
        (r.resource.canonical, r.method.lower())
        for r in app.router.routes()  # type: ignore[union-attr]
        # The dashboard's pages are HTML for people, not API (tests/relay/dashboard).
        if r.method != "HEAD" and not (r.name or "").startswith("dashboard:")
    }
    documented = {(path, method) for path, item in OPENAPI["paths"].items() for method in item}
    assert routes == documented
    for path, method, status in SEEN:
        assert str(status) in OPENAPI["paths"][path][method]["responses"], (path, method, status)
    schema_keys = set(OPENAPI["components"]["schemas"]["Report"]["properties"])
    from relay.schema import Report

    assert schema_keys == set(Report.__struct_fields__)


@pytest.mark.parametrize(
    "written",
    [str.upper, lambda text: text.replace("-", "").upper()],
    ids=["upper", "no-hyphens"],
)
async def test_a_report_id_is_stored_and_answered_as_its_canonical_text(
    client: Client,
    engine: AsyncEngine,
    home: NewHome,
    make_report: Callable[..., Any],
    written: Callable[[str], str],
) -> None:
    """However the home wrote its UUID, the relay stores and answers it as its canonical text
    (what ``str(uuid.UUID(…))`` writes)."""
    import uuid

    report = make_report(home.id)
    canonical = report["report_id"]
    report["report_id"] = written(canonical)
    status, body, _ = await _post(client, home.token, report)
    assert (status, body["report_id"]) == (202, canonical)
    assert canonical == str(uuid.UUID(report["report_id"]))
    async with engine.connect() as connection:
        stored = (await connection.execute(select(Report.report_id))).scalars().all()
    assert stored == [canonical]


async def test_duplicates_inside_one_batch_are_stored_once(
    engine: AsyncEngine, admin: Admin, make_report: Callable[..., Any]
) -> None:
    from relay.ingest import incoming
    from relay.schema import decode_report
    from relay.storage.batch import store_batch

    home = await admin.add_home("Batch home", "Europe/Berlin")
    raw = make_report(home.id)
    batch = [incoming(home.id, json.dumps(raw), decode_report(json.dumps(raw))) for _ in range(3)]
    async with engine.begin() as connection:
        outcomes = await connection.run_sync(store_batch, batch, datetime.now(UTC))
    assert outcomes == ["stored", "duplicate", "duplicate"]
    async with engine.begin() as connection:
        outcomes = await connection.run_sync(store_batch, batch[:1], datetime.now(UTC))
    assert outcomes == ["duplicate"]
    assert await _count(engine, Report) == 1


async def test_a_text_longer_than_its_column_is_refused_not_cut(engine: AsyncEngine) -> None:
    """PostgreSQL takes a batch's rows as arrays; a cast to VARCHAR(n)[] would cut a longer
    text without a word (two devices whose ids differ after 200 characters, one row)."""
    from relay.storage.bulk import DriverStatement, bulk_insert
    from relay.storage.models import HOMES

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps a text whole whatever its column's length")
    fields = ("id", "name", "timezone", "created_at")
    statement = DriverStatement(
        lambda rows: bulk_insert("postgresql", HOMES, fields, rows),
        fields,
        engine.dialect,
        "columns",
    )
    row = ("h" * 65, "Mum", "Europe/Berlin", datetime.now(UTC))  # homes.id is 64 long
    with pytest.raises(DBAPIError, match="too long"):
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: statement.execute(sync, [row]))


async def test_a_batch_of_many_rows_is_stored_whole(
    engine: AsyncEngine, admin: Admin, make_report: Callable[..., Any]
) -> None:
    """Devices and activity go as multi-row statements of a few sizes: a batch whose rows
    need several of them (more than the largest, not a power of two) stores every row, and
    the newest report of a device wins inside the batch too."""
    from relay.ingest import incoming
    from relay.schema import decode_report
    from relay.storage.batch import Incoming, store_batch
    from relay.storage.bulk import DriverStatement

    home = await admin.add_home("Many devices", "Europe/Berlin")
    now = datetime.now(UTC)
    count = DriverStatement.MAX_ROWS + 45

    def report(minutes_ago: int, battery: int) -> Incoming:
        template = make_report(home.id)["devices"][0]
        devices = [
            template | {"id": f"device-{n}", "name": f"Sensor {n}", "battery": battery}
            for n in range(count)
        ]
        moments = [
            {"room": f"Room {n}", "sensor_id": f"device-{n}", "at": now.isoformat()}
            for n in range(count)
        ]
        sent = (now - timedelta(minutes=minutes_ago)).isoformat()
        body = json.dumps(make_report(home.id, sent_at=sent, devices=devices, activity=moments))
        return incoming(home.id, body, decode_report(body))

    # The newest report (battery 70) is in the middle of the batch.
    batch = [report(5, 50), report(1, 70), report(3, 60)]
    async with engine.begin() as connection:
        outcomes = await connection.run_sync(store_batch, batch, now)
    assert outcomes == ["stored"] * 3
    async with engine.connect() as connection:
        batteries = (await connection.execute(select(DeviceState.battery))).scalars().all()
        counts = (await connection.execute(select(ActivityBucket.count))).scalars().all()
    assert batteries == [70] * count
    assert counts == [3] * count


async def test_batches_lock_rows_in_one_order_and_last_heard_never_goes_back(
    engine: AsyncEngine, admin: Admin, make_report: Callable[..., Any]
) -> None:
    """Two replicas write batches at once: each writes its rows in key order, whatever the
    order of its reports, so two transactions cannot wait on each other's rows (a deadlock);
    and a batch committing after a later one leaves the home's last_report_at at the later
    time."""
    from sqlalchemy import event

    from relay.ingest import incoming
    from relay.schema import decode_report
    from relay.storage import batch
    from relay.storage.batch import Incoming, store_batch

    homes = sorted(
        [await admin.add_home(f"Home {n}", "Europe/Berlin") for n in range(4)],
        key=lambda home: home.id,
    )

    def submission(home: NewHome) -> Incoming:
        body = json.dumps(make_report(home.id))
        return incoming(home.id, body, decode_report(body))

    written: list[list[str]] = []

    def record(
        _c: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if "UPDATE homes" not in statement:
            return
        if many:  # PostgreSQL: a row per home, WHERE homes.id = $8 (last)
            written.append([row[-1] for row in parameters])
        else:  # SQLite: the homes' rows in one VALUES list, each row's home first
            written.append(list(parameters[:: len(batch._HOME_TYPES)]))

    later = datetime.now(UTC)
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(
                store_batch, [submission(home) for home in reversed(homes)], later
            )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert written == [[home.id for home in homes]]
    async with engine.begin() as connection:
        await connection.run_sync(store_batch, [submission(homes[0])], later - timedelta(seconds=5))
    async with engine.connect() as connection:
        heard = await connection.scalar(select(Home.last_report_at).where(Home.id == homes[0].id))
    assert heard == later


async def test_a_warm_writer_compiles_no_statement(
    engine: AsyncEngine, admin: Admin, make_report: Callable[..., Any]
) -> None:
    """Batches reuse compiled SQL: each statement is compiled once per driver and row count
    (compiling the upserts per batch was a tenth of the relay's GIL time under load)."""
    from sqlalchemy.sql.compiler import SQLCompiler

    from relay.ingest import incoming
    from relay.schema import decode_report
    from relay.storage.batch import Incoming, store_batch

    home = await admin.add_home("Warm home", "Europe/Berlin")

    def batch() -> list[Incoming]:
        bodies = [json.dumps(make_report(home.id)) for _ in range(3)]
        return [incoming(home.id, b, decode_report(b)) for b in bodies]

    async with engine.begin() as connection:
        await connection.run_sync(store_batch, batch(), datetime.now(UTC))
    compiled = 0
    original = SQLCompiler.__init__

    def counting(self: SQLCompiler, *args: Any, **kwargs: Any) -> None:
        nonlocal compiled
        compiled += 1
        original(self, *args, **kwargs)

    with patch.object(SQLCompiler, "__init__", counting):
        async with engine.begin() as connection:
            outcomes = await connection.run_sync(store_batch, batch(), datetime.now(UTC))
    assert outcomes == ["stored"] * 3
    assert compiled == 0
    assert await _count(engine, Report) == 6


async def test_logs_are_json_with_request_ids_and_no_secrets(
    aiohttp_client: Callable[..., Any],
    engine: AsyncEngine,
    db_url: str,
    home: NewHome,
    make_report: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from relay.logs import JsonFormatter

    settings = Settings(db_url=db_url, log_every_request=True)
    client: Client = await aiohttp_client(create_app(settings, engine))
    caplog.set_level("INFO", logger="relay.http")
    async with client.post(
        "/api/v1/reports",
        json=make_report(home.id),
        headers={"Authorization": f"Bearer {home.token}", "X-Request-ID": "req-42"},
    ) as response:
        assert response.headers["X-Request-ID"] == "req-42"
    async with client.get("/healthz", headers={"X-Request-ID": "bad id!"}) as response:
        assert response.headers["X-Request-ID"] != "bad id!"
    lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "relay.http"
    ]
    assert lines[0]["status"] == 202
    assert lines[0]["request_id"] == "req-42"
    # A bad id is replaced by the relay's own: unique per process (prefix) and request (counter).
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+", lines[1]["request_id"])
    assert lines[0]["home_id"] == home.id
    assert lines[0]["path"] == "/api/v1/reports"
    assert home.token not in caplog.text
    assert all(line["level"] == "info" for line in lines)


async def test_by_default_only_refused_failed_and_slow_requests_have_lines_of_their_own(
    client: Client,
    home: NewHome,
    make_report: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from relay.http.middleware import REQUEST_LOG, SUMMARY_SECONDS
    from relay.logs import JsonFormatter

    caplog.set_level("INFO", logger="relay.http")
    for _ in range(3):
        assert (await _post(client, home.token, make_report(home.id)))[0] == 202
    assert (await _post(client, "hpr_made_up", make_report(home.id)))[0] == 401
    log = client.server.app[REQUEST_LOG]  # type: ignore[attr-defined]
    with patch("relay.http.middleware.SLOW_SECONDS", 0.0):  # every request is slow now
        assert (await _post(client, home.token, make_report(home.id)))[0] == 202
    with patch("relay.http.middleware.time.monotonic", return_value=log.since + SUMMARY_SECONDS):
        async with client.get("/healthz") as response:
            assert response.status == 200
    lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "relay.http"
    ]
    assert [line.get("status") for line in lines] == [401, 202, None]
    assert lines[1]["ms"] > 0
    summary = lines[2]
    assert summary["requests"] == 4  # three reports and the health check
    assert summary["statuses"] == {"202": 3, "200": 1}
    assert "token" not in caplog.text.lower().replace("hpr_made_up", "")


async def test_sqlite_wal_is_checkpointed_in_the_background(
    aiohttp_client: Callable[..., Any], tmp_path: Path, make_report: Callable[..., Any]
) -> None:
    from cryptography.fernet import Fernet

    from relay import ingest
    from relay.secretbox import SecretBox
    from relay.storage.db import upgrade

    db_url = f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}"
    engine = create_engine(db_url)
    await upgrade(engine)
    home = await Admin(engine, SecretBox(Fernet.generate_key())).add_home("WAL", "Europe/Berlin")

    calls: list[int] = []
    real = ingest.checkpoint_sqlite

    def counting(sync_engine: Any) -> None:
        calls.append(1)
        real(sync_engine)

    with (
        patch.object(ingest, "CHECKPOINT_EVERY", 0.05),
        patch.object(ingest, "checkpoint_sqlite", counting),
    ):
        client: Client = await aiohttp_client(create_app(Settings(db_url=db_url), engine))
        for _ in range(5):
            assert (await _post(client, home.token, make_report(home.id)))[0] == 202
        await asyncio.sleep(0.3)
        assert calls, "no background checkpoint after writes"
        after_writes = len(calls)
        await asyncio.sleep(0.3)
        assert len(calls) == after_writes, "checkpoints while nothing was written"
    writer = client.server.app[RELAY].writer
    assert await writer.in_writer(in_writer.pragma, "wal_autocheckpoint") == 0
    await client.close()
    await engine.dispose()


@pytest.mark.parametrize("rows", [1, 2, 16])
def test_sqlite_rows_are_bound_as_the_statement_plan_says(rows: int) -> None:
    """On SQLite a multi-row statement's parameters are bound row after row with one
    conversion per field (``_RowMajor``): the same values, in the same places, as the
    statement's full plan gives."""
    from sqlalchemy import JSON, Boolean, Integer
    from sqlalchemy.dialects.sqlite import pysqlite

    from relay.storage import batch
    from relay.storage.bulk import _bind
    from relay.storage.models import ACTIVITY, DEVICES, REPORTS, UTCDateTime

    def sample(kind: Any, field: str, row: int) -> Any:
        if isinstance(kind, UTCDateTime):
            return datetime(2026, 7, 27, 18, 55, tzinfo=UTC) + timedelta(seconds=row)
        if isinstance(kind, JSON):
            return {"row": row, "field": field}
        if isinstance(kind, Boolean):
            return row % 2 == 0
        if isinstance(kind, Integer):
            return row
        return f"{field}-{row}"

    statements = batch._statements(pysqlite.dialect())
    for statement, types in (
        (statements.reports, {f: REPORTS.c[f].type for f in batch._REPORT_FIELDS}),
        (statements.devices, {f: DEVICES.c[f].type for f in batch._DEVICE_FIELDS}),
        (statements.activity, {f: ACTIVITY.c[f].type for f in batch._ACTIVITY_FIELDS}),
        (statements.homes, batch._HOME_TYPES),
    ):
        given = [
            tuple(sample(kind, field, row) for field, kind in types.items()) for row in range(rows)
        ]
        _sql, plan, row_major = statement._sized(rows)
        assert row_major is not None  # every statement of a batch takes the fast form
        assert row_major.bind(given) == list(_bind(plan, given))


def test_sqlite_refusing_a_value_is_the_reports_fault_not_the_databases() -> None:
    """The writer's statements run on sqlite3 itself, whose errors come unwrapped: a
    constraint it refuses is the report's data (422), a failing disk the database's (503)."""
    import sqlite3

    from relay.storage.errors import is_data_error

    assert is_data_error(sqlite3.IntegrityError("NOT NULL constraint failed: reports.payload"))
    assert is_data_error(sqlite3.DataError("string or blob too big"))
    assert not is_data_error(sqlite3.OperationalError("disk I/O error"))
    assert not is_data_error(sqlite3.OperationalError("attempt to write a readonly database"))


async def test_the_sqlite_writer_holds_its_connection_until_a_recovery(
    client: Client, engine: AsyncEngine, home: NewHome, make_report: Callable[..., Any]
) -> None:
    """The SQLite writer keeps one connection from batch to batch; after a recovery (asked
    by whoever saw the database fail) its next batch runs on a fresh one, and the old one is
    closed, not handed out again."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the PostgreSQL writer's connection has its own tests")
    writer = client.server.app[RELAY].writer
    assert (await _post(client, home.token, make_report(home.id)))[0] == 202
    first = await writer.in_writer(in_writer.remember_held)
    assert (await _post(client, home.token, make_report(home.id)))[0] == 202
    assert await writer.in_writer(in_writer.held_id) == first
    assert not await writer.in_writer(in_writer.remembered_is_closed)
    await writer.recover()
    assert (await _post(client, home.token, make_report(home.id)))[0] == 202
    assert await writer.in_writer(in_writer.held_id) != first
    assert await writer.in_writer(in_writer.remembered_is_closed)
    assert await _count(engine, Report) == 3


async def test_the_relays_sqlite_writer_runs_in_an_interpreter_of_its_own(
    client: Client, engine: AsyncEngine, home: NewHome, make_report: Callable[..., Any]
) -> None:
    """The batch is written with the writer's own GIL, not the serving loop's (issue 16)."""
    writer = client.server.app[RELAY].writer
    where = await writer.in_writer(in_writer.interpreter_id)
    if engine.dialect.name == "sqlite":
        assert where != interpreters.get_current().id
    else:  # asyncpg needs the process's interpreter
        assert where == interpreters.get_current().id
