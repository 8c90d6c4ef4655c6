"""The simulated world changes like a real bridge's resources do."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from huesim import ManualClock, World
from huesim.world import hue_time
from tests.conftest import load_resources

SENSOR_DEVICE = "7bd86197-ef7c-7625-3170-1b6de1502441"  # motion sensor in Room 1
SENSOR = "9a747ee4-ab13-2f08-e8e9-0c8506d21649"
ROOM_1_MOTION = "3689dff1-6574-d400-dbd9-47a1e6123f98"
FULL_SENSOR = "fb657eb4-38ba-fd3c-7535-d56f4350699f"
CONTACT = "1c81d201-23f1-db39-9762-4eafb6397464"
BUTTON = "0a9acc8f-a8ab-af2e-373b-dc6040de3bd5"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def world(clock: ManualClock) -> World:
    return World(load_resources(), clock)


def _report(world: World, rid: str) -> dict[str, Any]:
    world.sync()
    report: dict[str, Any] = world.get(rid)["motion"]["motion_report"]
    return report


def test_motion_changes_on_both_transitions(world: World, clock: ManualClock) -> None:
    start = clock.now() + timedelta(seconds=5)
    world.move(SENSOR_DEVICE, start, seconds=3)
    assert _report(world, SENSOR)["motion"] is False
    clock.set(start)
    assert _report(world, SENSOR) == {"changed": hue_time(start), "motion": True}
    assert world.get(SENSOR)["motion"]["motion"] is True  # deprecated mirror follows
    assert _report(world, ROOM_1_MOTION)["motion"] is True
    clock.advance(12.9)
    assert _report(world, SENSOR)["motion"] is True  # 3 s of movement + 10 s hold
    clock.advance(0.2)
    end = start + timedelta(seconds=13)
    assert _report(world, SENSOR) == {"changed": hue_time(end), "motion": False}
    assert _report(world, ROOM_1_MOTION)["motion"] is False


def test_overlapping_movement_extends_without_new_transition(
    world: World, clock: ManualClock
) -> None:
    t0 = clock.now()
    world.move(SENSOR, t0)
    world.move(SENSOR, t0 + timedelta(seconds=8))
    clock.advance(30)
    assert _report(world, SENSOR) == {
        "changed": hue_time(t0 + timedelta(seconds=18)),
        "motion": False,
    }
    assert [m.start for m in world.movements] == [t0, t0 + timedelta(seconds=8)]


def test_battery_connectivity_and_events(world: World, clock: ManualClock) -> None:
    world.set_battery(FULL_SENSOR, 12)
    world.set_connectivity(FULL_SENSOR, "disconnected", at=clock.now() + timedelta(minutes=1))
    world.sync()
    power = world.service_of(FULL_SENSOR, "device_power")
    zigbee = world.service_of(FULL_SENSOR, "zigbee_connectivity")
    assert power is not None
    assert zigbee is not None
    assert power["power_state"] == {"battery_level": 12, "battery_state": "low"}
    assert zigbee["status"] == "connected"
    clock.advance(60)
    world.sync()
    assert zigbee["status"] == "disconnected"
    world.set_battery(FULL_SENSOR, 2)
    world.sync()
    assert power["power_state"]["battery_state"] == "critical"
    world.set_battery(power["id"], None, state="normal")
    world.press_button(BUTTON, "long_press")
    world.set_contact(CONTACT, "contact")
    world.sync()
    assert power["power_state"] == {"battery_level": None, "battery_state": "normal"}
    assert world.get(BUTTON)["button"]["button_report"] == {
        "event": "long_press",
        "updated": hue_time(clock.now()),
    }
    assert world.get(CONTACT)["contact_report"]["state"] == "contact"


def test_unknown_service_raises_keyerror(world: World) -> None:
    with pytest.raises(KeyError, match="has no device_power"):
        world.set_battery(SENSOR_DEVICE, 50)


def test_add_and_remove_devices(world: World) -> None:
    room = "2dc387a1-b021-19b8-bfbd-0b4503d402c3"
    new_id = world.add_device_like(FULL_SENSOR, "Hallway sensor", room_id=room)
    device = world.get(new_id)
    assert device["metadata"]["name"] == "Hallway sensor"
    assert all(world.get(ref["rid"])["owner"]["rid"] == new_id for ref in device["services"])
    assert {"rid": new_id, "rtype": "device"} in world.get(room)["children"]
    world.move(new_id)
    world.sync()
    world.remove_device(new_id)
    assert new_id not in {r["id"] for r in world.resources()}
    assert all(ref["rid"] != new_id for ref in world.get(room)["children"])
    assert len(world.resources("device")) == 46


def test_offline_windows(world: World, clock: ManualClock) -> None:
    start = clock.now() + timedelta(minutes=5)
    world.bridge_offline(start, start + timedelta(minutes=10), status=504)
    assert world.offline_status(clock.now()) is None
    assert world.offline_status(start) == 504
    assert world.offline_status(start + timedelta(minutes=10)) is None
