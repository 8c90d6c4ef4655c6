"""Summaries and alerts, end to end: a real database (SQLite and PostgreSQL), real Apprise
delivering to a local HTTP sink, and a clock the test moves across DST, restarts and outages."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
import logging
import re
from typing import Any

from cryptography.fernet import Fernet
import pytest
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import AdminError
from relay.notifications import plan as plan_module, visibility, worker
from relay.notifications.escalate import ack_links
from relay.notifications.plan import NotifySettings, plan
from relay.notifications.summary import Period, gather
from relay.secretbox import SecretBox
from relay.storage.db import create_engine
from relay.storage.models import Alert, Caregiver, DeliveryAttempt, Notification, table
from tests.relay.notify_harness import Clock, Relay, messages
from tests.relay.sink import Sink, running_sink


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(2026, 3, 28, 6, 0))  # Saturday 07:00 in Berlin; DST starts Sunday


@pytest.fixture
def relay(engine: AsyncEngine, clock: Clock) -> Relay:
    return Relay(
        engine,
        SecretBox(Fernet.generate_key()),
        clock,
        NotifySettings(public_url="https://relay.example"),
    )


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as running:
        yield running


async def count(engine: AsyncEngine, model: type[object], *where: object) -> int:
    async with engine.connect() as connection:
        found = await connection.scalar(
            select(func.count()).select_from(table(model)).where(*where)  # type: ignore[arg-type]
        )
    return int(found or 0)


# -- summaries ---------------------------------------------------------------------------------


async def test_summary_arrives_at_the_local_time_on_the_dst_day(
    relay: Relay, clock: Clock, sink: Sink
) -> None:
    home = await relay.home("Mum's flat")
    await relay.caregiver("Ann", sink, home, summary_at="08:00", kinds=())
    await relay.at(utc(2026, 3, 28, 7, 30))  # its first slot: Sunday 08:00, summer time
    await relay.activity(home, utc(2026, 3, 28, 7, 10), room="Kitchen")
    await relay.activity(home, utc(2026, 3, 28, 9, 5), room="Kitchen", count=2)
    await relay.activity(home, utc(2026, 3, 28, 17, 40), room="Living room")
    await relay.reported(home, utc(2026, 3, 29, 5, 55))
    await relay.at(utc(2026, 3, 29, 5, 59))  # 07:59 summer time: not yet
    assert sink.received == []
    await relay.at(utc(2026, 3, 29, 6, 0))  # 08:00 summer time
    [(title, body)] = messages(sink)
    assert title == "Mum's flat: All normal"
    assert "From Sat 28 Mar 08:00 to Sun 29 Mar 08:00." in body
    # Winter time yesterday, summer time today.
    assert (
        "4 movements: the first at Sat 28 Mar 08:10 in the Kitchen, the last at Sat 28 Mar "
        "18:40 in the Living room." in body
    )
    assert "Most movement in the Kitchen (3)." in body
    assert "All devices respond and no battery is low." in body
    for later in (1, 30, 600):
        await relay.at(utc(2026, 3, 29, 6, 0) + timedelta(minutes=later))
    assert len(sink.received) == 1  # once per day, whatever the ticks
    await relay.reported(home, utc(2026, 3, 30, 5, 55))
    await relay.at(utc(2026, 3, 30, 6, 0))
    assert len(sink.received) == 2


async def test_a_summary_says_what_needs_attention(relay: Relay, sink: Sink) -> None:
    home = await relay.home("Dad")
    await relay.caregiver("Ann", sink, home, summary_at="09:00", kinds=())
    await relay.tick()
    await relay.device(home, "d1", name="Hall sensor", battery=4, battery_state="critical")
    await relay.device(home, "d2", name="Door", room=None, battery=15, battery_state="low")
    await relay.device(
        home,
        "d3",
        name="Bedroom",
        room="Bed",
        connectivity="disconnected",
        offline_since=utc(2026, 3, 28, 20, 0),
    )
    await relay.reported(
        home,
        utc(2026, 3, 28, 22, 0),
        bridge_reachable=False,
        bridge_offline_since=utc(2026, 3, 28, 21, 0),
    )
    await relay.at(utc(2026, 3, 29, 7, 0))
    [(title, body)] = messages(sink)
    assert title == (
        "Dad: Needs attention: we cannot see right now; no movement; 1 battery almost empty; "
        "1 battery low; 1 device not responding"
    )
    # The room is not repeated when the device's own name says it.
    assert (
        'The motion sensor "Hall sensor": battery almost empty (4 %); please replace it soon.'
        in body
    )
    assert 'The motion sensor "Door": battery low (15 %)' in body
    assert 'The motion sensor "Bedroom": not responding since yesterday 21:00.' in body
    assert "No movement was noticed in this time." in body
    assert (
        "We cannot see whether anyone is moving in Dad right now: the Hue Bridge, the small hub "
        "the sensors talk to, has not answered since yesterday 22:00." in body
    )


async def test_a_slow_planning_pass_says_what_it_wrote_and_where_its_time_went(
    relay: Relay, clock: Clock, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    home = await relay.home("Dad")
    await relay.caregiver("Ann", sink, home, summary_at="07:00", kinds=("stale",))
    await relay.tick()
    clock.advance(days=1)  # the summary is due, and the home has been silent for a day
    relay.notifier.interval = timedelta(hours=1)  # a pass may take 10 minutes
    with caplog.at_level(logging.DEBUG, logger=worker.__name__):
        await relay.tick()
    [quiet] = [r for r in caplog.records if r.name == worker.__name__]
    assert quiet.levelno == logging.DEBUG
    assert "summaries 1, alert events 1, alert messages 1, escalations 0" in quiet.message
    caplog.clear()
    clock.advance(hours=2)
    relay.notifier.interval = timedelta(microseconds=6)  # no pass takes under a microsecond
    with caplog.at_level(logging.DEBUG, logger=worker.__name__):
        await relay.tick()
    [slow] = [r for r in caplog.records if r.name == worker.__name__]
    assert slow.levelno == logging.WARNING
    assert slow.message.startswith("planning took ")
    steps = ["visibility", "summaries", "conditions", "reconcile", "alert messages", "escalations"]
    assert re.search(" ".join(rf"{step} [0-9.]+ s[,)]" for step in steps), slow.message)


async def test_missed_summaries_come_late_once_and_fold_into_one(relay: Relay, sink: Sink) -> None:
    home = await relay.home()
    await relay.caregiver("Ann", sink, home, summary_at="08:00", kinds=())
    await relay.tick()
    # The relay is down from Saturday 07:00 until Wednesday 10:30: five 08:00s pass unseen;
    # one late summary covers the latest day.
    await relay.reported(home, utc(2026, 4, 1, 8, 25))
    await relay.at(utc(2026, 4, 1, 8, 30))
    [(title, body)] = messages(sink)
    assert title.startswith("[late] Mum")
    assert "This summary was due at 08:00 and comes late: hpoll was not running then." in body
    assert "4 earlier summaries could not be sent while hpoll was not running" in body
    await relay.at(utc(2026, 4, 1, 8, 31))
    assert len(sink.received) == 1
    await relay.at(utc(2026, 4, 2, 6, 0))  # Thursday 08:00: on time again
    assert not messages(sink)[1][0].startswith("[late]")


async def test_a_crash_mid_send_means_a_retry_not_a_loss(
    relay: Relay, clock: Clock, sink: Sink, engine: AsyncEngine
) -> None:
    home = await relay.home()
    await relay.caregiver("Ann", sink, home, summary_at="08:00", kinds=())
    await relay.tick()
    clock.set(utc(2026, 3, 29, 6, 0))
    async with engine.begin() as connection:  # the planning part of a tick only
        await connection.run_sync(plan, clock.now, relay.settings)
        # A replica claimed the message and died before Apprise answered.
        await connection.execute(
            update(table(Notification)).values(
                status="sending", claimed_until=clock.now + timedelta(minutes=5), attempts=1
            )
        )
    await relay.at(utc(2026, 3, 29, 6, 2))
    assert sink.received == []  # the claim still stands
    await relay.at(utc(2026, 3, 29, 6, 6))
    assert len(sink.received) == 1
    assert await count(engine, Notification, table(Notification).c.status == "sent") == 1


async def test_two_replicas_racing_send_each_summary_once(
    relay: Relay, clock: Clock, sink: Sink, db_url: str
) -> None:
    homes = [await relay.home(f"Home {n}") for n in range(5)]
    for n, home in enumerate(homes):
        await relay.caregiver(f"Carer {n}", sink, home, summary_at="08:00", kinds=())
    await relay.tick()
    second = create_engine(db_url)
    try:
        other = relay.replica(second)
        clock.set(utc(2026, 3, 29, 6, 0))
        for home in homes:
            await relay.reported(home)
        for _ in range(3):
            await asyncio.gather(relay.tick(), other.tick())
    finally:
        await second.dispose()
    titles = sorted(title for title, _ in messages(sink))
    assert titles == sorted(f"Home {n}: Needs attention: no movement" for n in range(5))


# -- alerts ------------------------------------------------------------------------------------


async def test_battery_alert_resolves_with_hysteresis_and_no_flapping(
    relay: Relay, clock: Clock, sink: Sink
) -> None:
    home = await relay.home("Mum")
    await relay.activity(home, clock.now)
    await relay.caregiver("Ann", sink, home, kinds=("battery",))
    await relay.device(home, battery=12, battery_state="low")
    await relay.tick()
    [(title, body)] = messages(sink)
    assert title == "Mum: battery low: Hall sensor"
    assert body.startswith(
        'The battery of the motion sensor "Hall sensor" is low.\n\n'
        "Please replace it soon: when it runs out, movement there can no longer be noticed."
    )
    await relay.device(home, battery=100, battery_state="normal")  # new batteries
    clock.advance(minutes=1)
    await relay.reported(home)
    await relay.tick()
    assert len(sink.received) == 1  # clear for a minute: not yet
    clock.advance(minutes=5)
    await relay.reported(home)
    await relay.tick()
    assert messages(sink)[1] == (
        "Mum: over \u2013 battery low: Hall sensor",
        'The battery of the motion sensor "Hall sensor" is fine again.\n\n'
        "It was low for 1 minute, from 07:00 to 07:01.\n\n"  # new batteries at 07:01
        "You receive this because you watch over Mum with hpoll. Times are Europe/Berlin time.",
    )
    await relay.device(home, battery=19, battery_state="low")  # a reading wobbles
    clock.advance(minutes=1)
    await relay.tick()
    assert len(sink.received) == 2  # within the cooldown: no new alert


async def test_changes_of_one_tick_fold_into_one_message_per_caregiver(
    relay: Relay, sink: Sink
) -> None:
    first, second = await relay.home("Mum"), await relay.home("Dad")
    for home in (first, second):
        await relay.activity(home, relay.clock.now)
        await relay.caregiver(f"Ann {home}", sink, home, kinds=("battery", "offline"))
    await relay.admin.subscribe(first, f"Ann {second}", None, ["battery", "offline"])
    for n in range(3):
        await relay.device(first, f"d{n}", name=f"Sensor {n}", battery=5, battery_state="low")
    await relay.device(second, "x", name="Door", battery=5, battery_state="critical")
    await relay.tick()
    titles = sorted(title for title, _ in messages(sink))
    assert titles == ["4 updates: Dad, Mum", "Mum: 3 things to check"]


async def test_quiet_hours_hold_non_urgent_alerts_until_morning(
    relay: Relay, clock: Clock, sink: Sink
) -> None:
    home = await relay.home()
    await relay.caregiver("Ann", sink, home, kinds=("battery",))
    await relay.admin.set_quiet_hours("Ann", "22:00", "07:00")
    clock.set(utc(2026, 7, 1, 21, 30))  # 23:30 in Berlin
    await relay.reported(home)
    await relay.device(home, battery=9, battery_state="low")
    await relay.tick()
    assert sink.received == []
    clock.set(utc(2026, 7, 2, 4, 59))
    await relay.reported(home)
    await relay.tick()
    assert sink.received == []
    clock.set(utc(2026, 7, 2, 5, 0))  # 07:00
    await relay.reported(home)
    await relay.tick()
    assert len(sink.received) == 1


async def test_inactivity_is_urgent_escalates_and_stops_when_acknowledged(
    relay: Relay, clock: Clock, sink: Sink, engine: AsyncEngine
) -> None:
    home = await relay.home("Mum")
    await relay.caregiver("Ann", sink, home, kinds=("inactivity",), order=0)
    await relay.caregiver("Ben", sink, home, kinds=("inactivity",), order=1)
    await relay.caregiver("Cleo", sink, home, kinds=("inactivity",), order=2)
    await relay.admin.set_quiet_hours("Ann", "00:00", "23:59")  # urgent ignores quiet hours
    clock.set(utc(2026, 7, 1, 7, 0))  # 09:00 in Berlin
    await relay.activity(home, clock.now)
    for minute in range(0, 181, 5):  # three hours of silence, reporting all along
        clock.set(utc(2026, 7, 1, 7, 0) + timedelta(minutes=minute))
        await relay.reported(home)
        await relay.tick()
    [(title, body)] = messages(sink)
    assert title == "URGENT \u2013 Mum: no movement since 09:00"
    assert "No movement has been noticed in Mum since 09:00 (3 hours)." in body
    assert "The last movement was in the Kitchen at 09:00." in body
    assert "hpoll-relay" not in body
    assert "https://relay.example/api/v1/alerts/1/ack?code=" in body
    assert "Otherwise Ben is told in 15 minutes." in body
    assert sink.received[0]["title"] == title
    clock.advance(minutes=15)
    await relay.reported(home)
    await relay.tick()
    assert messages(sink)[1][0] == (
        "URGENT \u2013 Mum: no movement since 09:00 (nobody has answered for 15 minutes)"
    )
    await relay.admin.acknowledge(1, by="Ben")
    clock.advance(minutes=30)
    await relay.reported(home)
    await relay.tick()
    # Cleo is not called: Ben is on it, and Ann, who was told too, hears so.
    assert [title for title, _ in messages(sink)[2:]] == ["Mum: Ben is on it"]
    await relay.activity(home, clock.now)
    clock.advance(minutes=1)
    await relay.reported(home)
    await relay.tick()
    resolved = sorted(title for title, _ in messages(sink)[3:])
    assert resolved == ["Mum: over \u2013 no movement since 09:00"] * 2
    assert "Ben was looking into it" in messages(sink)[3][1]
    alerts = await relay.admin.list_alerts()
    assert [(a.kind, a.state, a.acked_by) for a in alerts] == [("inactivity", "resolved", "Ben")]


async def test_silences_beginning_and_ending_together_take_a_few_statements(
    relay: Relay, clock: Clock, sink: Sink, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each alarm wrote its link and read its last movement, and each ended silence read its
    # movement and who was told, one statement at a time: 500 homes falling silent (or
    # resuming) in one minute were 1,000-1,500 round trips of one planning pass.
    monkeypatch.setattr(visibility, "MOVEMENTS_PER_STATEMENT", 5)
    homes = [await relay.home(f"Home {n}") for n in range(12)]
    for n, home in enumerate(homes):
        await relay.caregiver(f"Carer {n}", sink, home, kinds=("inactivity",))
    clock.set(utc(2026, 7, 1, 7, 0))  # 09:00 in Berlin
    for n, home in enumerate(homes):
        await relay.activity(home, clock.now, room=f"Hall {n}")
        await relay.reported(home)
    await relay.tick()
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def tick_after(minutes: int, room: str | None = None) -> list[str]:
        clock.advance(minutes=minutes)
        for n, home in enumerate(homes):
            if room:
                await relay.activity(home, clock.now, room=f"{room} {n}")
            await relay.reported(home)
        statements.clear()
        event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            await relay.tick()
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", record)
        return list(statements)

    def of(statements: list[str], *parts: str) -> int:
        return sum(all(part in statement for part in parts) for statement in statements)

    began = await tick_after(181)
    alarms = dict(messages(sink))
    assert sorted(alarms) == sorted(
        f"URGENT \u2013 Home {n}: no movement since 09:00" for n in range(12)
    )
    for n in range(12):
        body = alarms[f"URGENT \u2013 Home {n}: no movement since 09:00"]
        assert f"The last movement was in the Hall {n} at 09:00." in body
        assert "/api/v1/alerts/" in body
    assert of(began, "INSERT INTO ack_links") == 1
    assert of(began, "FROM activity", "UNION ALL") == 3  # 12 homes, 5 a statement

    ended = await tick_after(1, room="Room")
    over = dict(messages(sink)[len(homes) :])
    assert sorted(over) == sorted(
        f"Home {n}: over \u2013 no movement since 09:00" for n in range(12)
    )
    for n in range(12):
        title = f"Home {n}: over \u2013 no movement since 09:00"
        assert f"Movement again at 12:02 in the Room {n}." in over[title]
    assert of(ended, "FROM activity", "UNION ALL") == 3
    assert of(ended, "FROM notifications", "alert_id IN") == 1


async def test_an_acknowledgement_is_announced_once_and_not_composed_again(
    relay: Relay, clock: Clock, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every pass composed "Ben is on it" again for each alarm acknowledged in the last day,
    # for the outbox to drop as a duplicate.
    home = await relay.home("Mum")
    await relay.caregiver("Ann", sink, home, kinds=("inactivity",), order=0)
    await relay.caregiver("Ben", sink, home, kinds=("inactivity",), order=1)
    clock.set(utc(2026, 7, 1, 7, 0))
    await relay.activity(home, clock.now)
    for minutes in (0, 181, 15):  # Ann is told after 3 hours, Ben 15 minutes later
        clock.advance(minutes=minutes)
        await relay.reported(home)
        await relay.tick()
    await relay.admin.acknowledge(1, by="Ben")
    composed: list[object] = []
    acknowledged = plan_module.compose.acknowledged
    monkeypatch.setattr(
        plan_module.compose,
        "acknowledged",
        lambda *args: composed.append(args) or acknowledged(*args),
    )
    for _ in range(3):
        clock.advance(minutes=1)
        await relay.reported(home)
        await relay.tick()
    assert [title for title, _ in messages(sink)[2:]] == ["Mum: Ben is on it"]
    assert len(composed) == 1


async def test_inactivity_counts_only_active_hours(relay: Relay, clock: Clock, sink: Sink) -> None:
    home = await relay.home()
    await relay.caregiver("Ann", sink, home, kinds=("inactivity",))
    await relay.activity(home, utc(2026, 7, 1, 19, 0))  # 21:00, then bed
    for hour in range(20, 32):  # through the night to 09:00 (07:00 UTC)
        clock.set(utc(2026, 7, 1, 0, 0) + timedelta(hours=hour))
        await relay.reported(home)
        await relay.tick()
    assert sink.received == []  # the night is not inactivity; 07:00-09:00 is only 2 h
    clock.set(utc(2026, 7, 2, 8, 0))  # 10:00: three active hours without activity
    await relay.reported(home)
    await relay.tick()
    assert messages(sink)[0][0] == "URGENT \u2013 Mum: no movement since yesterday 21:00"


async def test_stale_home_and_unreachable_bridge(relay: Relay, clock: Clock, sink: Sink) -> None:
    home = await relay.home("Mum")
    await relay.caregiver("Ann", sink, home, kinds=("stale", "bridge"))
    await relay.reported(
        home, bridge_reachable=False, bridge_offline_since=clock.now - timedelta(minutes=20)
    )
    clock.advance(minutes=29)
    await relay.tick()
    [(title, body)] = messages(sink)
    assert title == "Mum: the Hue Bridge is not answering"
    assert body.startswith(
        "We cannot see whether anyone is moving in Mum right now: the Hue Bridge, the small hub "
        "the sensors talk to, has not answered since 06:40."
    )
    clock.advance(minutes=1)
    await relay.tick()
    assert messages(sink)[1][0] == "Mum: no news from the home"
    assert "We have heard nothing from Mum since 07:00." in messages(sink)[1][1]


def verdict(state: str, since: datetime | None = None, **values: Any) -> dict[str, Any]:
    """A verdict as ingest stores it (the home's detector, JSON text)."""
    return {
        "state": state,
        "since": since.isoformat() if since else None,
        "reason": "unusual_gap" if state == "inactive" else None,
        "limit_minutes": 95,
        "learning": False,
        "confidence": 1.0,
        "away": state == "away",
        "low_activity_today": False,
        "last_activity": since.isoformat() if since else None,
        **values,
    }


async def test_the_homes_verdict_decides_inactivity(relay: Relay, clock: Clock, sink: Sink) -> None:
    home = await relay.home("Mum")
    await relay.caregiver("Ann", sink, home, kinds=("inactivity", "quiet"))
    last = clock.now - timedelta(minutes=100)
    # The fixed rule would wait for three hours; the home's own detector says it is unusual now.
    await relay.reported(home, last_activity_at=last, verdict=verdict("inactive", last))
    await relay.tick()
    [(title, body)] = messages(sink)
    assert title == "URGENT \u2013 Mum: no movement since 05:20"
    assert body.startswith("No movement has been noticed in Mum since 05:20 (1 hour 40 minutes).")
    # Why, in the home's own terms: the limit its detector learned.
    assert (
        "That is far longer than usual for Mum at this time of day: the alarm is raised after "
        "1 hour 35 minutes without movement then." in body
    )
    assert "(unusual_gap, limit 95 minutes)" in body
    alert = (await relay.admin.list_alerts())[0]
    assert (alert.kind, alert.state) == ("inactivity", "open")
    clock.advance(minutes=1)
    await relay.reported(home, verdict=verdict("active", clock.now))
    await relay.tick()
    assert (await relay.admin.list_alerts())[0].state == "resolved"


async def test_out_or_blind_is_never_inactivity(relay: Relay, clock: Clock, sink: Sink) -> None:
    home = await relay.home("Mum")
    await relay.caregiver("Ann", sink, home, kinds=("inactivity",))
    long_ago = clock.now - timedelta(hours=9)
    await relay.reported(home, last_activity_at=long_ago, verdict=verdict("away", long_ago))
    await relay.tick()
    # The bridge is unreachable: the home's last verdict says nothing about now.
    await relay.reported(home, bridge_reachable=False, verdict=verdict("inactive", long_ago))
    await relay.tick()
    clock.advance(minutes=20)  # and a verdict older than FRESH_REPORT says nothing either
    await relay.reported(home, at=clock.now - timedelta(minutes=16), bridge_reachable=True)
    await relay.tick()
    assert sink.received == []


async def test_a_low_activity_day_is_the_quiet_alert(
    relay: Relay, clock: Clock, sink: Sink
) -> None:
    home = await relay.home("Mum")
    await relay.caregiver("Ann", sink, home, kinds=("inactivity", "quiet"))
    low = verdict("active", clock.now, low_activity_today=True)
    await relay.reported(home, last_activity_at=clock.now, verdict=low)
    await relay.tick()
    [(title, body)] = messages(sink)
    assert title == "Mum: much less activity than usual today"
    assert body.startswith(
        "There has been much less movement in Mum today than usual by this time of day."
    )
    assert "weeks" not in body  # not the old rule's "each of the past 4 weeks"
    clock.advance(minutes=10)
    await relay.reported(home, last_activity_at=clock.now, verdict=verdict("active", clock.now))
    await relay.tick()
    clock.advance(minutes=5)  # good news waits for CLEAR_FOR
    await relay.reported(home, verdict=verdict("active", clock.now - timedelta(minutes=5)))
    await relay.tick()
    assert messages(sink)[1] == (
        "Mum: over \u2013 much less activity than usual today",
        "Activity in Mum is no longer far below usual (07:10).\n\n"
        "It had been much lower than usual for 10 minutes, from 07:00 to 07:10.\n\n"
        "You receive this because you watch over Mum with hpoll. Times are Europe/Berlin time.",
    )


# -- delivery ----------------------------------------------------------------------------------


async def test_a_failing_channel_is_retried_recorded_flagged_and_mentioned(
    relay: Relay, clock: Clock, sink: Sink, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    home = await relay.home("Mum")
    await relay.activity(home, clock.now)
    with running_sink(status=500) as broken:
        await relay.caregiver("Ann", broken, home, kinds=("battery",))
        await relay.device(home, battery=9, battery_state="low")
        for minutes in (0, 1, 3, 7):  # retries after 1, 2, 4 minutes
            clock.set(utc(2026, 3, 28, 6, 0) + timedelta(minutes=minutes))
            await relay.reported(home)
            await relay.tick()
        assert len(broken.received) == 4  # Apprise really tried, four times
    attempts = await count(engine, DeliveryAttempt)
    assert attempts == 4
    async with engine.connect() as connection:
        ann = (await connection.execute(select(table(Caregiver)))).one()
    assert ann.consecutive_failures == 4
    assert ann.failing_since == utc(2026, 3, 28, 6, 3)
    await relay.caregiver("Ben", sink, home, kinds=("battery",))
    await relay.device(home, "d2", name="Door", battery=9, battery_state="low")
    await relay.reported(home)
    await relay.tick()
    [(_title, body)] = messages(sink)
    assert "Note: messages to Ann (since 2026-03-28 06:03 UTC) keep failing" in body
    assert broken.url not in caplog.text
    assert "json://" not in caplog.text


async def test_a_message_that_fails_for_a_day_is_given_up_and_counted(
    relay: Relay, clock: Clock, engine: AsyncEngine
) -> None:
    home = await relay.home()
    await relay.activity(home, clock.now)
    with running_sink(status=500) as broken:
        await relay.caregiver("Ann", broken, home, kinds=("battery",))
        await relay.device(home, battery=9, battery_state="low")
        start = clock.now
        for hours in range(0, 26):
            clock.set(start + timedelta(hours=hours))
            await relay.reported(home)
            await relay.tick()
    notifications = table(Notification)
    assert await count(engine, Notification, notifications.c.status == "failed") == 1
    assert relay.notifier.dispatcher.gave_up == 1


async def test_acknowledgement_needs_the_caregivers_own_link(
    relay: Relay, clock: Clock, sink: Sink
) -> None:
    home = await relay.home()
    await relay.caregiver("Ann", sink, home, kinds=("inactivity",))
    async with relay.engine.begin() as connection:
        await connection.execute(
            insert(table(Alert)).values(
                home_id=home,
                kind="inactivity",
                subject="",
                state="open",
                opened_at=clock.now,
                urgent=True,
            )
        )
        links = await connection.run_sync(ack_links, [(1, 1)], clock.now, relay.settings)
        link = links[(1, 1)]
        # One link per caregiver and alert: a second is never made.
        assert await connection.run_sync(ack_links, [(1, 1)], clock.now, relay.settings) == {}
    code = link.rpartition("code=")[2]
    with pytest.raises(AdminError, match="no alert 1 with that code"):
        await relay.admin.acknowledge(1, code="wrong")
    with pytest.raises(AdminError):
        await relay.admin.acknowledge(99, by="cli")
    alert = await relay.admin.acknowledge(1, code=code)
    assert (alert.state, alert.acked_by, alert.acked_by_caregiver_id) == ("acked", "Ann", 1)


@pytest.mark.parametrize(
    ("timezone", "summary_at", "due"),
    [
        # New York springs forward at 02:00: 02:30 does not exist, the summary comes at 03:30.
        ("America/New_York", "02:30", utc(2026, 3, 8, 7, 30)),
        # ... and falls back at 02:00: 01:30 happens twice, the summary comes the first time.
        ("America/New_York", "01:30", utc(2026, 11, 1, 5, 30)),
        # Lord Howe moves by 30 minutes: 02:15 does not exist on 4 October.
        ("Australia/Lord_Howe", "02:15", utc(2026, 10, 3, 15, 45)),
        ("Australia/Lord_Howe", "01:45", utc(2026, 4, 4, 14, 45)),
    ],
)
async def test_summaries_on_dst_days_come_once(
    relay: Relay, clock: Clock, sink: Sink, timezone: str, summary_at: str, due: datetime
) -> None:
    home = await relay.home("Gran", timezone)
    await relay.caregiver("Ann", sink, home, summary_at=summary_at, kinds=())
    await relay.at(due - timedelta(hours=12))
    await relay.reported(home, due - timedelta(minutes=5))
    await relay.at(due - timedelta(minutes=1))
    assert sink.received == []
    await relay.at(due)
    assert len(sink.received) == 1
    assert not messages(sink)[0][0].startswith("[late]")
    for later in (30, 60, 90, 120):  # through the repeated hour, if there is one
        await relay.reported(home, due + timedelta(minutes=later))
        await relay.at(due + timedelta(minutes=later))
    assert len(sink.received) == 1


async def test_a_digest_brings_several_homes_in_one_message(relay: Relay, sink: Sink) -> None:
    homes = [await relay.home(name) for name in ("Mum", "Dad", "Gran")]
    await relay.caregiver("Care team", sink, homes[0], summary_at="08:00", kinds=())
    for home in homes[1:]:
        await relay.admin.subscribe(home, "Care team", "08:00", [])
    await relay.admin.set_digest("Care team", digest=True)
    await relay.caregiver("Ann", sink, homes[0], summary_at="08:00", kinds=())
    await relay.activity(homes[0], utc(2026, 3, 28, 7, 15))
    await relay.at(utc(2026, 3, 28, 6, 30))
    for home in homes:
        await relay.reported(home, utc(2026, 3, 29, 5, 58))
    await relay.at(utc(2026, 3, 29, 6, 0))
    by_title = dict(messages(sink))
    assert set(by_title) == {"3 homes: 2 need attention", "Mum: All normal"}
    digest = by_title["3 homes: 2 need attention"]
    assert digest.splitlines()[:3] == [
        "- Dad: Needs attention: no movement",
        "- Gran: Needs attention: no movement",
        "- Mum: All normal",
    ]
    assert "\n\nMum: All normal\nAll normal.\n" in digest
    await relay.at(utc(2026, 3, 29, 6, 5))
    assert len(sink.received) == 2


async def test_a_digest_written_ahead_stays_one_message(
    relay: Relay, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Five summaries at 08:00, two a pass: the care team's three homes must not be cut in two
    # digests by the passes' room.
    monkeypatch.setattr(plan_module, "PLAN_AT_ITS_TIME", 2)
    monkeypatch.setattr(plan_module, "PLAN_AHEAD_PER_PASS", 2)
    relay.notifier.interval = timedelta(minutes=1)
    homes = [await relay.home(name) for name in ("Mum", "Dad", "Gran", "Aunt", "Uncle")]
    await relay.caregiver("Ann", sink, homes[0], summary_at="08:00", kinds=())
    await relay.caregiver("Care team", sink, homes[1], summary_at="08:00", kinds=())
    for home in homes[2:4]:
        await relay.admin.subscribe(home, "Care team", "08:00", [])
    await relay.admin.set_digest("Care team", digest=True)
    await relay.caregiver("Bob", sink, homes[4], summary_at="08:00", kinds=())
    await relay.tick()
    await relay.at(utc(2026, 3, 28, 7, 0))  # Saturday's 08:00
    sink.received.clear()
    for minute in range(55, 62):  # Sunday 07:55 to 08:01 in Berlin
        await relay.at(utc(2026, 3, 29, 5, 0) + timedelta(minutes=minute))
    assert sorted(title.split(":")[0] for title, _ in messages(sink)) == [
        "3 homes",
        "Mum",
        "Uncle",
    ]


async def test_a_summary_at_midnight_covers_the_day_before(relay: Relay, sink: Sink) -> None:
    home = await relay.home("Mum")
    await relay.caregiver("Ann", sink, home, summary_at="00:00", kinds=())
    await relay.at(utc(2026, 7, 1, 12, 0))
    await relay.activity(home, utc(2026, 7, 1, 21, 59))  # 23:59 in Berlin: still that day
    await relay.reported(home, utc(2026, 7, 1, 21, 59))
    await relay.at(utc(2026, 7, 1, 22, 0))  # midnight in Berlin
    [(_title, body)] = messages(sink)
    assert "From Wed 1 Jul 00:00 to Thu 2 Jul 00:00." in body
    assert (
        "1 movement: the first at Wed 1 Jul 23:59 in the Kitchen, the last at Wed 1 Jul 23:59 "
        "in the Kitchen." in body
    )


async def test_night_or_silence_never_resolves_inactivity_only_activity_does(
    relay: Relay, clock: Clock, sink: Sink
) -> None:
    home = await relay.home("Mum")
    await relay.caregiver("Ann", sink, home, kinds=("inactivity",))
    await relay.activity(home, utc(2026, 7, 1, 15, 0))  # 17:00 in Berlin
    for hour in (18, 18.5, 19, 20):  # 20:00 (18 UTC): three hours without activity
        clock.set(utc(2026, 7, 1) + timedelta(hours=hour))
        await relay.reported(home)
        await relay.tick()
    assert [title for title, _ in messages(sink)] == ["URGENT \u2013 Mum: no movement since 17:00"]
    clock.set(utc(2026, 7, 1, 21, 0))  # 23:00: night; still nothing, and that is no news
    await relay.reported(home)
    await relay.tick()
    clock.set(utc(2026, 7, 2, 3, 0))  # the home stops reporting: we cannot know either
    await relay.tick()
    # The alarm stays open; whoever was told hears that we cannot see any more.
    assert messages(sink)[1][0] == "URGENT \u2013 Mum: we cannot see right now"
    assert "nothing has arrived from the home since yesterday 23:00" in messages(sink)[1][1]
    await relay.activity(home, utc(2026, 7, 2, 5, 30))  # 07:30: someone is up
    clock.set(utc(2026, 7, 2, 5, 35))
    await relay.reported(home)
    await relay.tick()
    assert messages(sink)[2][0] == "Mum: over \u2013 no movement since yesterday 17:00"
    assert messages(sink)[2][1].startswith("Movement again at 07:30 in the Kitchen.")


async def test_one_dispatch_sends_everything_due_urgent_first(
    relay: Relay, clock: Clock, sink: Sink, engine: AsyncEngine
) -> None:
    homes = [await relay.home(f"Home {n}") for n in range(5)]
    for n, home in enumerate(homes):
        await relay.caregiver(f"Carer {n}", sink, home, summary_at="10:30", kinds=("inactivity",))
    await relay.tick()
    await relay.activity(homes[0], utc(2026, 3, 28, 6, 0))
    clock.set(utc(2026, 3, 29, 8, 30))  # 10:30, three and a half active hours later
    for home in homes:
        await relay.reported(home)
    async with engine.begin() as connection:
        await connection.run_sync(plan, clock.now, relay.settings)
    # Batches of one: sent one after the other, so the sink sees the dispatch order.
    sent = await relay.notifier.dispatcher.run_once(clock.now, batch=1)
    assert sent == len(sink.received) == 6  # five summaries and one urgent alert
    assert sink.received[0]["title"].startswith("URGENT \u2013 Home 0: no movement since")


async def test_a_relay_restart_after_an_outage_raises_no_false_alarms(
    relay: Relay, clock: Clock, sink: Sink
) -> None:
    clock.set(utc(2026, 7, 1, 7, 0))  # 09:00 in Berlin
    homes = [await relay.home(f"Home {n}") for n in range(3)]
    for n, home in enumerate(homes):
        await relay.activity(home, clock.now)
        await relay.caregiver(f"Carer {n}", sink, home)
    await relay.tick()
    # The relay is down from 09:00 to 13:00. It restarts: a new process, a new notifier.
    clock.set(utc(2026, 7, 1, 11, 0))
    relay.notifier = relay.replica(relay.engine)
    await relay.tick()
    assert sink.received == []  # nobody could report to it: not "stale", not "inactive"
    # The homes send what they queued, oldest first: the news is still hours old.
    for home in homes[:2]:
        await relay.reported(home, utc(2026, 7, 1, 7, 30))
    clock.advance(minutes=1)
    await relay.tick()
    assert sink.received == []
    # Two homes are up to date (someone moved at 12:50); the third never comes back.
    for home in homes[:2]:
        await relay.activity(home, utc(2026, 7, 1, 10, 50))
        await relay.reported(home, utc(2026, 7, 1, 11, 2))
    for minutes in range(2, 31):
        clock.set(utc(2026, 7, 1, 11, minutes))
        await relay.tick()
    assert [title for title, _ in messages(sink)] == ["Home 2: no news from the home"]
    assert "We have heard nothing from Home 2 since 09:00." in messages(sink)[0][1]


async def _crowd_at_eight(relay: Relay, sink: Sink, count: int) -> None:
    """``count`` homes, each with a caregiver whose summary is at 08:00 (Berlin), planned with
    passes every minute, run through Saturday's 08:00."""
    relay.notifier.interval = timedelta(minutes=1)
    homes = [await relay.home(f"Home {n}") for n in range(count)]
    for n, home in enumerate(homes):
        await relay.caregiver(f"Carer {n}", sink, home, summary_at="08:00", kinds=())
    await relay.tick()  # their first pass: the next summary is at 08:00
    await relay.at(utc(2026, 3, 28, 7, 0))  # Saturday's 08:00


async def test_summaries_are_written_ahead_and_sent_at_their_minute(
    relay: Relay, clock: Clock, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A crowd at 08:00 (Berlin) larger than its pass composes (2 here): the pass at 08:00
    # composes 2, the passes before the rest (2 each), as late as they allow; all are sent at
    # 08:00, once, and each says up to when it tells.
    monkeypatch.setattr(plan_module, "PLAN_AT_ITS_TIME", 2)
    monkeypatch.setattr(plan_module, "PLAN_AHEAD_PER_PASS", 2)
    await _crowd_at_eight(relay, sink, 5)
    assert len(sink.received) == 5
    sink.received.clear()
    # Sunday 08:00 in Berlin is 06:00 UTC: the passes at 06:00 and 05:59 have room for 2 each,
    # and the fifth is written at 05:58.
    written = [(await relay.at(utc(2026, 3, 29, 5, m))).summaries for m in range(55, 60)]
    assert written == [0, 0, 0, 1, 2]
    assert sink.received == []  # written, not due yet
    async with relay.engine.connect() as connection:
        due = (
            await connection.execute(
                select(table(Notification).c.due_at).where(
                    table(Notification).c.status == "pending"
                )
            )
        ).scalars()
        assert list(due) == [utc(2026, 3, 29, 6, 0)] * 3
    assert (await relay.at(utc(2026, 3, 29, 6, 0))).summaries == 2
    assert sorted(title.split(":")[0] for title, _ in messages(sink)) == [
        f"Home {n}" for n in range(5)
    ]
    ends = sorted(body.split("\n\n")[1] for _, body in messages(sink))
    assert ends == [
        "From Sat 28 Mar 08:00 to Sun 29 Mar 07:58.",
        *["From Sat 28 Mar 08:00 to Sun 29 Mar 07:59."] * 2,
        *["From Sat 28 Mar 08:00 to Sun 29 Mar 08:00."] * 2,
    ]
    await relay.at(utc(2026, 3, 29, 6, 1))
    assert len(sink.received) == 5


async def test_a_crowd_beyond_what_passes_write_ahead_comes_whole_and_is_logged(
    relay: Relay,
    clock: Clock,
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # One a pass ahead, one at the minute, two minutes ahead at most: 3 of a crowd of 5 fit;
    # the first pass that sees the crowd writes the excess as well, and says so.
    monkeypatch.setattr(plan_module, "PLAN_AT_ITS_TIME", 1)
    monkeypatch.setattr(plan_module, "PLAN_AHEAD_PER_PASS", 1)
    monkeypatch.setattr(plan_module, "PLAN_AHEAD", timedelta(minutes=2))
    await _crowd_at_eight(relay, sink, 5)
    sink.received.clear()
    caplog.clear()
    written = [(await relay.at(utc(2026, 3, 29, 5, m))).summaries for m in range(57, 60)]
    assert written == [0, 3, 1]
    assert "5 summaries are due in the next 2 minutes" in caplog.text
    assert "this pass writes 3 of them" in caplog.text
    assert (await relay.at(utc(2026, 3, 29, 6, 0))).summaries == 1
    assert len(sink.received) == 5


async def test_a_summary_moved_to_another_time_comes_at_the_new_time_only(
    relay: Relay, sink: Sink
) -> None:
    home = await relay.home()
    await relay.caregiver("Ann", sink, home, summary_at="08:00", kinds=())
    await relay.tick()
    await relay.at(utc(2026, 7, 4, 6, 0))  # Saturday 08:00 in Berlin
    assert len(sink.received) == 1
    await relay.admin.subscribe(home, "Ann", "10:00", [])  # at 09:00: from now on at 10:00
    for hour in range(7, 33):  # Saturday 09:00 to Sunday 10:00, Berlin
        await relay.at(utc(2026, 7, 4, 0) + timedelta(hours=hour))
    periods = [body.split("\n\n")[1] for _, body in messages(sink)]
    assert periods == [
        "From Fri 3 Jul 08:00 to Sat 4 Jul 08:00.",
        "From Fri 3 Jul 10:00 to Sat 4 Jul 10:00.",
        "From Sat 4 Jul 10:00 to Sun 5 Jul 10:00.",
    ]


async def test_a_planning_pass_locks_no_home(relay: Relay, clock: Clock, sink: Sink) -> None:
    # A pass holds its row locks for seconds; ingest's batches update homes: a pass that wrote
    # homes rows made them wait, and deadlocked with them on PostgreSQL.
    homes = [await relay.home(name) for name in ("Mum", "Dad")]
    for home in homes:
        await relay.caregiver(f"Carer of {home}", sink, home, summary_at="08:00")
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    async def tick() -> None:
        event.listen(relay.engine.sync_engine, "before_cursor_execute", record)
        try:
            await relay.tick()
        finally:
            event.remove(relay.engine.sync_engine, "before_cursor_execute", record)

    await tick()
    clock.advance(hours=5)  # stale: alerts and blind spells open
    await tick()
    await relay.reported(homes[0])
    clock.advance(minutes=1)
    await tick()
    assert any(s.startswith("insert into blind_spells") for s in statements)
    assert not [s for s in statements if s.startswith("update homes")]


def test_a_pass_writes_ahead_only_what_later_passes_cannot() -> None:
    # This pass started (a little late) at 05:00:20; later passes start on the minute's grid.
    now, minute = utc(2026, 3, 29, 5, 0, 20), timedelta(minutes=1)
    room = 4 * plan_module.PLAN_AHEAD_PER_PASS + plan_module.PLAN_AT_ITS_TIME
    crowd = [utc(2026, 3, 29, 5, 5)] * room
    assert plan_module._plan_ahead(crowd, now, minute) == 0  # passes at :01 to :04, and :05
    crowd.append(crowd[0])
    assert plan_module._plan_ahead(crowd, now, minute) == 1
    soon = [utc(2026, 3, 29, 5, 0, 30), utc(2026, 3, 29, 5, 1)]
    assert plan_module._plan_ahead(soon, now, minute) == 1  # no later pass by 05:00:30


async def test_a_summary_written_ahead_tells_of_its_day_up_to_then(
    relay: Relay, clock: Clock
) -> None:
    home = await relay.home()
    await relay.tick()  # watching from now (Saturday 06:00 UTC)
    await relay.activity(home, utc(2026, 3, 28, 9, 0))
    written = utc(2026, 3, 29, 5, 50)  # ten minutes before the summary's time: its end
    period = Period(home, clock.now, written)
    async with relay.engine.connect() as connection:
        [fact] = await connection.run_sync(gather, [period])
    assert fact.last is not None
    # Quiet from the last movement until it was written, not through minutes still to come.
    assert fact.longest_quiet == (fact.last.at, written)
