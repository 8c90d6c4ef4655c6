"""What the pages show: status in words, worst first, the home's own time, today against the
usual range, the four weeks, devices, alerts, messages; escaping; the Me page's settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import Admin
from relay.clock import utcnow
from relay.http.dashboard.views import DASHBOARD
from relay.storage.models import ALERTS, CAREGIVERS, HOMES, NOTIFICATIONS
from tests.relay.sink import running_sink

from .conftest import World
from .helpers import Browser, Client, add_activity, add_device, open_alert, reported


async def _age(engine: AsyncEngine, home_id: str, days: int) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(HOMES)
            .where(HOMES.c.id == home_id)
            .values(created_at=utcnow() - timedelta(days=days))
        )


async def test_homes_worst_first_with_status_in_words(
    client: Client, engine: AsyncEngine, admin: Admin, world: World, ann: Browser
) -> None:
    calm = (await admin.add_home("Aunt's cottage", "Europe/Berlin")).id
    new = (await admin.add_home("Brand new flat", "Europe/Berlin")).id
    silent = (await admin.add_home("Silent house", "Europe/Berlin")).id
    for home in (calm, new, silent):
        await admin.subscribe(home, "Ann", None, [])
    for home in (calm, world.mum, silent):
        await _age(engine, home, 30)
    await reported(engine, calm)
    await reported(engine, new)
    await reported(engine, world.mum)
    await reported(engine, silent, timedelta(hours=2))
    await add_device(engine, world.mum, name="Kitchen sensor", battery=4, battery_state="critical")
    page = await ann.get("/")
    names = [
        n
        for n in ("Silent house", "Mum&#39;s flat", "Brand new flat", "Aunt&#39;s cottage")
        if n in page.text
    ]
    assert sorted(names, key=page.text.index) == names
    assert "Silent since" in page.text
    assert "Needs attention" in page.text
    assert "1 low battery" in page.text
    assert "Kitchen sensor (4 %)" in page.text
    assert "Learning (day 1 of 7)" in page.text
    assert "All normal" in page.text
    filtered = await ann.get("/?show=attention")
    assert "Silent house" in filtered.text
    assert "Aunt" not in filtered.text
    searched = await ann.get("/fragments/homes?q=cottage")
    assert "Aunt&#39;s cottage" in searched.text
    assert "Silent house" not in searched.text
    assert "<html" not in searched.text  # the fragment the page's script swaps in


async def test_home_page_times_in_the_home_zone_and_usual_range(
    client: Client, engine: AsyncEngine, world: World, ann: Browser
) -> None:
    await _age(engine, world.mum, 40)
    await reported(engine, world.mum)
    zone = ZoneInfo("Europe/Berlin")
    now = utcnow()
    today = now.astimezone(zone).date()
    for days_back in range(1, 29):
        day = today - timedelta(days=days_back)
        for hour in (7, 8, 12, 19):
            at = datetime(day.year, day.month, day.day, hour, 5, tzinfo=zone).astimezone(UTC)
            await add_activity(engine, world.mum, "Kitchen", at, count=2 + days_back % 3)
    early = datetime(today.year, today.month, today.day, 0, 20, tzinfo=zone).astimezone(UTC)
    await add_activity(engine, world.mum, "<b>Hall</b>", early, 3)
    page = await ann.get(f"/homes/{world.mum}")
    assert page.status == 200
    assert "&lt;b&gt;Hall&lt;/b&gt;</strong>: 3 movements, active 00:15-00:30" in page.text
    assert "A usual day here has" in page.text
    assert "movements (10th to 90th percentile of the last 28 days)" in page.text
    band = client.app[DASHBOARD].bands.get(world.mum, today)
    # Daily totals 8, 12 or 16 (four hours a day): 9 days of 8, 10 of 12, 9 of 16.
    assert band is not None
    assert (band.daily, band.days) == ((8, 16), 28)
    assert f"{early.astimezone(zone):%H:%M}" in page.text  # last activity in the home's time
    # The Homes page shows the same band, refreshed in the background.
    homes = await ann.get("/")
    assert "usual by now" in homes.text


async def test_acknowledge_button_stops_the_escalation(
    client: Client, engine: AsyncEngine, world: World, ann: Browser
) -> None:
    alert = await open_alert(engine, world.mum)
    page = await ann.get(f"/homes/{world.mum}")
    assert "I am on it" in page.text
    done = await ann.post(f"/homes/{world.mum}/alerts/{alert}/ack")
    assert (done.status, done.location) == (303, f"/homes/{world.mum}#alerts")
    async with engine.connect() as connection:
        row = (await connection.execute(select(ALERTS).where(ALERTS.c.id == alert))).one()
    assert (row.state, row.acked_by, row.next_escalation_at) == ("acked", "Ann", None)
    assert row.acked_by_caregiver_id == world.ann
    page = await ann.get(f"/homes/{world.mum}")
    assert "acknowledged by Ann" in page.text
    assert "I am on it" not in page.text
    assert "acknowledged by Ann" in (await ann.get("/")).text
    # An alert id of another home in this home's URL is refused.
    other = await open_alert(engine, world.dad)
    assert (await ann.post(f"/homes/{world.mum}/alerts/{other}/ack")).status == 404
    assert (await ann.post(f"/homes/{world.mum}/alerts/x/ack")).status == 404


async def test_home_controlled_strings_render_as_text(
    client: Client, engine: AsyncEngine, admin: Admin, world: World, ann: Browser
) -> None:
    evil = "<script>alert(1)</script>"
    link = '<a href="https://evil.example">click</a>'
    home = (await admin.add_home(evil, "Europe/Berlin")).id
    await admin.subscribe(home, "Ann", None, [])
    await reported(engine, home)
    await add_device(
        engine, home, name=link, room=evil, battery_state="low", connectivity="disconnected"
    )
    await add_activity(engine, home, link, utcnow())
    await open_alert(engine, home)
    async with engine.begin() as connection:
        await connection.execute(update(ALERTS).values(details={"text": link}))
    for path in ("/", f"/homes/{home}", "/fragments/homes"):
        page = await ann.get(path)
        assert evil not in page.text, path
        assert link not in page.text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path
        assert "&lt;a href=&#34;https://evil.example&#34;&gt;click&lt;/a&gt;" in page.text, path


async def test_messages_and_next_summary_on_the_home_page(
    client: Client, engine: AsyncEngine, world: World, ann: Browser
) -> None:
    now = utcnow()
    async with engine.begin() as connection:
        await connection.execute(
            NOTIFICATIONS.insert(),
            [
                {
                    "caregiver_id": world.ann,
                    "home_id": world.mum,
                    "kind": "summary",
                    "dedup_key": "a",
                    "title": "Mum's day",
                    "body": "",
                    "status": "sent",
                    "created_at": now,
                    "due_at": now,
                    "sent_at": now,
                    "attempts": 1,
                    "last_error": None,
                },
                {
                    "caregiver_id": world.ann,
                    "home_id": world.mum,
                    "kind": "alert",
                    "dedup_key": "b",
                    "title": "Battery low",
                    "body": "",
                    "status": "failed",
                    "sent_at": None,
                    "created_at": now,
                    "due_at": now,
                    "attempts": 9,
                    "last_error": "1 of 1 services failed (JSON)",
                },
                {
                    "caregiver_id": world.bob,
                    "home_id": world.mum,
                    "kind": "alert",
                    "dedup_key": "c",
                    "title": "For Bob only",
                    "body": "",
                    "status": "pending",
                    "sent_at": None,
                    "last_error": None,
                    "created_at": now,
                    "due_at": now,
                    "attempts": 0,
                },
            ],
        )
    page = await ann.get(f"/homes/{world.mum}")
    assert "Your next daily summary" in page.text or "no daily summary" in page.text
    assert "Mum&#39;s day" in page.text
    assert "delivered" in page.text
    assert "not delivered (gave up)" in page.text
    assert "1 of 1 services failed" in page.text
    assert "For Bob only" not in page.text  # another caregiver's messages stay theirs


async def test_me_page_settings_and_test_message(
    client: Client, engine: AsyncEngine, world: World, ann: Browser
) -> None:
    page = await ann.get("/me")
    assert "JSON: json://127.0.0.1:9/" in page.text
    await ann.post("/me/quiet", {"start": "22:30", "end": "06:45"})
    await ann.post("/me/digest", {"digest": "on"})
    bad = await ann.post("/me/quiet", {"start": "25:00", "end": "06:45"})
    assert bad.status == 400
    async with engine.connect() as connection:
        row = (
            await connection.execute(select(CAREGIVERS).where(CAREGIVERS.c.id == world.ann))
        ).one()
    assert (row.quiet_start, row.quiet_end, row.digest) == ("22:30", "06:45", True)
    await ann.post("/me/quiet", {"quiet": "off"})
    await ann.post("/me/digest", {})
    async with engine.connect() as connection:
        row = (
            await connection.execute(select(CAREGIVERS).where(CAREGIVERS.c.id == world.ann))
        ).one()
    assert (row.quiet_start, row.digest) == (None, False)
    with running_sink() as sink:
        async with engine.begin() as connection:
            await connection.execute(
                update(CAREGIVERS)
                .where(CAREGIVERS.c.id == world.ann)
                .values(apprise_url_encrypted=client.app[DASHBOARD].box.encrypt(sink.url))
            )
        page = await ann.post("/me/test")
        assert "Test message sent." in page.text
        assert "Hello Ann: hpoll can reach you here." in sink.received[0]["message"]
    failed = await ann.post("/me/test")  # the sink is gone
    assert failed.status == 502
    assert "The test message failed" in failed.text


async def test_me_page_when_the_relays_key_does_not_fit(
    client: Client, world: World, ann: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPOLL_RELAY_SECRET_KEY", Fernet.generate_key().decode())
    page = await ann.get("/me")
    assert page.status == 200
    assert "unreadable:" in page.text
    failed = await ann.post("/me/test")
    assert failed.status == 500
    assert "Cannot send: the channel is unreadable" in failed.text
