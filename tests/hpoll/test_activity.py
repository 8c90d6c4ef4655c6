"""The activity tracker: activity between polls, counted once, across restarts and clock skew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.hpoll.activity.tracker import ActivityEvent, ActivityTracker, source_states
from custom_components.hpoll.hue import Snapshot, parse_snapshot
from huesim import ManualClock, World
from tests.conftest import load_resources

SENSOR_DEVICE = "7bd86197-ef7c-7625-3170-1b6de1502441"  # Room 1
SENSOR = "9a747ee4-ab13-2f08-e8e9-0c8506d21649"
ROOM_1_MOTION = "3689dff1-6574-d400-dbd9-47a1e6123f98"
OLD_SENSOR_DEVICE = "9d6998c6-ed4d-cc75-0e50-4ec61446e8f2"
BUTTON = "0a9acc8f-a8ab-af2e-373b-dc6040de3bd5"
CONTACT = "1c81d201-23f1-db39-9762-4eafb6397464"
FULL_SENSOR_DEVICE = "fb657eb4-38ba-fd3c-7535-d56f4350699f"
FULL_SENSOR_MOTION = "749be502-2ecf-52ad-aee4-c96bec40249b"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 7, 28, 8, 0, tzinfo=UTC))


@pytest.fixture
def world(clock: ManualClock) -> World:
    return World(load_resources(), clock)


def primary(events: list[ActivityEvent]) -> list[ActivityEvent]:
    return [event for event in events if event.primary]


def snap(world: World) -> Snapshot:
    return parse_snapshot({"errors": [], "data": world.resources()})


def test_history_is_not_news(world: World, clock: ManualClock) -> None:
    tracker = ActivityTracker(started_at=clock.now())
    first = tracker.update(snap(world), clock.now())
    assert primary(first) == []
    # What happened before we watched only tells the latest activity (the capture froze one
    # sensor mid-movement: its start is history too, never "now").
    assert all(e.history for e in first)
    assert any(e.history and e.sensor_id == SENSOR for e in first)
    second = tracker.update(snap(world), clock.now())
    assert primary(second) == []
    assert not any(e.history for e in second)  # history only on first sight
    assert tracker.marks[SENSOR] == datetime(2026, 7, 27, 18, 33, 10, 223000, tzinfo=UTC)


def test_movement_between_polls_is_seen(world: World, clock: ManualClock) -> None:
    tracker = ActivityTracker(started_at=clock.now())
    tracker.update(snap(world), clock.now())
    start = clock.now() + timedelta(seconds=12)
    world.move(SENSOR_DEVICE, start, seconds=3)
    clock.advance(60)  # movement started and ended (12 s + 3 s + 10 s hold) before this poll
    events = [e for e in tracker.update(snap(world), clock.now()) if not e.ongoing]
    end = start + timedelta(seconds=13)
    by_kind = {(event.kind, event.sensor_id): event for event in events}
    assert by_kind[("motion", SENSOR)].at == end
    assert by_kind[("motion", SENSOR)].room == "Room 1"
    assert by_kind[("room_motion", ROOM_1_MOTION)].at == end
    # The home's grouped motion stays on: in the capture another room's sensor is active.
    assert not any(event.kind == "home_motion" for event in events)
    assert [event for event in events if event.primary] == [by_kind[("motion", SENSOR)]]
    assert primary(tracker.update(snap(world), clock.now())) == []  # counted once


def test_restart_does_not_count_twice(world: World, clock: ManualClock) -> None:
    tracker = ActivityTracker(started_at=clock.now())
    tracker.update(snap(world), clock.now())
    world.move(SENSOR_DEVICE)
    clock.advance(30)
    assert tracker.update(snap(world), clock.now())
    saved: dict[str, Any] = tracker.export()
    clock.advance(600)  # HA restarts ten minutes later
    restored = ActivityTracker.restore(saved, started_at=clock.now())
    assert primary(restored.update(snap(world), clock.now())) == []
    world.move(SENSOR_DEVICE)
    clock.advance(30)
    assert [e.sensor_id for e in restored.update(snap(world), clock.now()) if e.primary] == [SENSOR]


def test_restore_drops_garbage() -> None:
    now = datetime(2026, 7, 28, tzinfo=UTC)
    tracker = ActivityTracker.restore(
        {"a": "2026-07-28T07:00:00+00:00", "b": "yesterday", "c": "2026-07-28T07:00:00"},
        started_at=now,
    )
    assert set(tracker.marks) == {"a"}


def test_bridge_clock_ahead_counts_once_at_now(world: World, clock: ManualClock) -> None:
    tracker = ActivityTracker(started_at=clock.now())
    tracker.update(snap(world), clock.now())
    world.move(SENSOR_DEVICE)
    clock.advance(30)
    ours = clock.now() - timedelta(minutes=5)  # our clock is 5 minutes behind the bridge
    events = [e for e in tracker.update(snap(world), ours) if e.primary]
    assert [e.at for e in events] == [ours]
    assert primary(tracker.update(snap(world), ours + timedelta(minutes=1))) == []


def test_old_firmware_is_sampled(world: World, clock: ManualClock) -> None:
    for raw in world.of_type("motion"):
        if raw["owner"]["rid"] == OLD_SENSOR_DEVICE:
            raw["motion"] = {"motion": True, "motion_valid": True}
            old_id = raw["id"]
    tracker = ActivityTracker(started_at=clock.now())
    events = [e for e in tracker.update(snap(world), clock.now()) if e.sensor_id == old_id]
    assert len(events) == 1
    assert events[0].sampled
    assert events[0].at == clock.now()
    world.get(old_id)["motion"]["motion"] = False
    assert [e for e in tracker.update(snap(world), clock.now()) if e.sensor_id == old_id] == []


def test_buttons_contacts_and_new_devices(world: World, clock: ManualClock) -> None:
    tracker = ActivityTracker(started_at=clock.now())
    tracker.update(snap(world), clock.now())
    clock.advance(5)
    world.press_button(BUTTON)
    world.set_contact(CONTACT, "contact")
    new_device = world.add_device_like("fb657eb4-38ba-fd3c-7535-d56f4350699f", "New sensor")
    world.move(new_device)
    clock.advance(30)
    kinds = {(e.kind, e.sensor_id) for e in tracker.update(snap(world), clock.now()) if e.primary}
    assert ("button", BUTTON) in kinds
    assert ("contact", CONTACT) in kinds
    new_motion = world.service_of(new_device, "motion")
    assert new_motion is not None
    assert ("motion", new_motion["id"]) in kinds  # paired after we started: its news counts


def test_outage_gap_keeps_only_the_latest_change(world: World, clock: ManualClock) -> None:
    tracker = ActivityTracker(started_at=clock.now())
    tracker.update(snap(world), clock.now())
    for minute in (1, 20, 40):  # three movements while the bridge was unreachable
        world.move(SENSOR_DEVICE, clock.now() + timedelta(minutes=minute))
    clock.advance(3600)
    events = [e for e in tracker.update(snap(world), clock.now()) if e.primary]
    assert len(events) == 1  # what the bridge kept: the last change; the rest is a known gap
    assert events[0].at == clock.now() - timedelta(minutes=20) + timedelta(seconds=10)


def test_a_movement_spanning_polls_counts_once(world: World, clock: ManualClock) -> None:
    tracker = ActivityTracker(started_at=clock.now())
    tracker.update(snap(world), clock.now())
    start = clock.now() + timedelta(seconds=5)
    world.move(SENSOR_DEVICE, start, seconds=900)  # fifteen minutes without a pause
    counted: list[ActivityEvent] = []
    ends: list[ActivityEvent] = []
    for _ in range(5):
        clock.advance(300)
        events = [e for e in tracker.update(snap(world), clock.now()) if e.sensor_id == SENSOR]
        counted += primary(events)
        ends += [e for e in events if e.ongoing]
        # Never "now" while it lasts: the bridge's own times only.
        assert all(e.at != clock.now() for e in events)
    assert [e.at for e in counted] == [start]
    assert len(ends) == 1
    assert ends[0].at > start  # its end moves the latest activity on, uncounted


def test_a_stuck_sensor_adds_nothing_and_is_flagged(world: World, clock: ManualClock) -> None:
    tracker = ActivityTracker(started_at=clock.now())
    tracker.update(snap(world), clock.now())
    start = clock.now() + timedelta(seconds=5)
    world.move(SENSOR_DEVICE, start, seconds=10 * 3600)  # motion never goes off
    events: list[ActivityEvent] = []
    for _ in range(180):
        clock.advance(60)
        events += [e for e in tracker.update(snap(world), clock.now()) if e.sensor_id == SENSOR]
    assert [(e.at, e.primary) for e in events] == [(start, True)]
    assert tracker.stuck(clock.now())[SENSOR] == start
    assert SENSOR not in tracker.stuck(start + timedelta(hours=1))
    # Room- and area-level motion repeat the sensors: only sensors are flagged.
    assert set(tracker.stuck(clock.now())) <= {m["id"] for m in world.of_type("motion")}


def test_old_firmware_motion_counts_each_rise_once(world: World, clock: ManualClock) -> None:
    old = next(m for m in world.of_type("motion") if m["owner"]["rid"] == OLD_SENSOR_DEVICE)
    old["motion"] = {"motion": False, "motion_valid": True}
    tracker = ActivityTracker(started_at=clock.now())
    tracker.update(snap(world), clock.now())
    seen = []
    for on in (True, True, True, False, True):
        old["motion"]["motion"] = on
        clock.advance(60)
        seen += [e.at for e in tracker.update(snap(world), clock.now()) if e.primary]
    assert seen == [clock.now() - timedelta(minutes=4), clock.now()]


def test_motion_state_survives_a_restart(world: World, clock: ManualClock) -> None:
    from custom_components.hpoll.activity.log import ActivityLog

    log = ActivityLog(ActivityTracker(started_at=clock.now()), UTC)
    log.record(log.tracker.update(snap(world), clock.now()), clock.now())
    world.move(SENSOR_DEVICE, clock.now() + timedelta(seconds=5), seconds=120)
    clock.advance(60)  # the poll sees the movement start
    assert primary(log.tracker.update(snap(world), clock.now()))
    restored = ActivityLog.restore(log.export(), timezone=UTC, started_at=clock.now())
    clock.advance(300)  # and after the restart, its end
    events = [e for e in restored.tracker.update(snap(world), clock.now()) if e.sensor_id == SENSOR]
    assert [e.ongoing for e in events] == [True]
    assert primary(events) == []


def test_source_states_say_which_sensors_the_bridge_reaches(
    world: World, clock: ManualClock
) -> None:
    """Every activity source the bridge lists, and whether it reaches its device: a sensor
    that dropped off the mesh sees nothing however much goes on (the detector does not wait
    for it to tell someone is back). A device without connectivity news counts as reached."""
    states = source_states(snap(world))
    assert states[SENSOR] is True  # no zigbee_connectivity service in the capture
    assert states[FULL_SENSOR_MOTION] is True
    assert {BUTTON, CONTACT} <= states.keys()
    world.set_connectivity(FULL_SENSOR_DEVICE, "connectivity_issue")
    world.sync()
    states = source_states(snap(world))
    assert states[FULL_SENSOR_MOTION] is False
    assert states[SENSOR] is True
