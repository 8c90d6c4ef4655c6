"""Parsing the real captured CLIP v2 listing into a Snapshot."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from custom_components.hpoll.hue import (
    BatteryState,
    ConnectivityStatus,
    Device,
    HueResponseError,
    Motion,
    parse_snapshot,
)

MOTION_SENSOR = "7bd86197-ef7c-7625-3170-1b6de1502441"  # "Device 46", SML003 in Room 1
FULL_SENSOR = "fb657eb4-38ba-fd3c-7535-d56f4350699f"  # "Device 2", SML003, no room
OLD_MOTION_SENSOR = "9d6998c6-ed4d-cc75-0e50-4ec61446e8f2"  # SML001
CONTACT_SENSOR = "6b31cfbc-fdec-c439-f6ca-85fdb03f30d3"
LOW_BATTERY_DEVICE = "fc8a3caf-95aa-9c24-0eb2-22293a7f2618"
ROOM_1 = "2dc387a1-b021-19b8-bfbd-0b4503d402c3"


def test_fixture_parses_completely(envelope: dict[str, Any]) -> None:
    snapshot = parse_snapshot(envelope)
    assert snapshot.skipped == 0
    assert len(snapshot.devices) == 46
    assert len(snapshot.rooms) == 11
    assert len(snapshot.zones) == 9
    assert snapshot.bridge is not None
    assert snapshot.bridge.bridge_id == "aabbccddeeffggh"
    assert snapshot.bridge.time_zone == "Europe/Amsterdam"
    assert snapshot.home is not None
    assert snapshot.home.grouped_motion_id in snapshot.area_motion
    powered = [d for d in snapshot.devices.values() if d.power is not None]
    assert len(powered) == 4
    sensors = [d for d in snapshot.devices.values() if d.motion and d.motion.rtype == "motion"]
    assert len(sensors) == 4
    kinds = {m.rtype for m in snapshot.area_motion.values()}
    assert kinds == {"grouped_motion", "convenience_area_motion", "security_area_motion"}


def test_motion_sensor_is_linked_to_its_services_and_room(envelope: dict[str, Any]) -> None:
    snapshot = parse_snapshot(envelope)
    device = snapshot.devices[MOTION_SENSOR]
    assert device.name == "Device 46"
    assert device.model_id == "SML003"
    assert device.manufacturer == "Signify Netherlands B.V."
    assert device.room_id == ROOM_1
    assert snapshot.room_of(MOTION_SENSOR) is snapshot.rooms[ROOM_1]
    assert device.motion is not None
    assert device.motion.id == "9a747ee4-ab13-2f08-e8e9-0c8506d21649"
    assert device.motion.motion is False
    assert device.motion.changed == datetime(2026, 7, 27, 18, 33, 10, 223000, tzinfo=UTC)
    # Every service id leads back to its device in O(1).
    assert snapshot.device_for(device.motion.id) is device
    assert snapshot.device_for(MOTION_SENSOR) is device
    assert snapshot.device_for("no-such-id") is None


def test_full_sensor_has_every_service(envelope: dict[str, Any]) -> None:
    """The anonymised capture spreads services over devices; "Device 2" has them all."""
    device = parse_snapshot(envelope).devices[FULL_SENSOR]
    assert device.motion is not None
    assert device.temperature is not None
    assert device.temperature.temperature is not None
    assert device.light_level is not None
    assert device.power is not None
    assert device.connectivity is not None
    assert device.connectivity.mac_address is not None
    assert device.room_id is None


def test_battery_and_connectivity(envelope: dict[str, Any]) -> None:
    snapshot = parse_snapshot(envelope)
    low = snapshot.devices[LOW_BATTERY_DEVICE].power
    assert low is not None
    assert (low.battery_level, low.battery_state) == (3, BatteryState.LOW)
    statuses = {
        d.connectivity.status for d in snapshot.devices.values() if d.connectivity is not None
    }
    assert ConnectivityStatus.CONNECTIVITY_ISSUE in statuses
    assert ConnectivityStatus.CONNECTED in statuses


def test_contact_tamper_buttons_rotary(envelope: dict[str, Any]) -> None:
    snapshot = parse_snapshot(envelope)
    contact_device = snapshot.devices[CONTACT_SENSOR]
    assert contact_device.contact is not None
    assert contact_device.contact.is_open is True
    assert contact_device.tamper is not None
    assert contact_device.tamper.tampered is False
    buttons = [b for d in snapshot.devices.values() for b in d.buttons]
    assert len(buttons) == 4
    never_pressed = [b for b in buttons if b.updated is None]
    assert never_pressed, "the 1970-01-01 'never pressed' timestamp must read as None"
    rotaries = [r for d in snapshot.devices.values() for r in d.rotaries]
    assert rotaries
    assert all(r.updated is not None and r.direction for r in rotaries)


def test_light_level_in_lux(envelope: dict[str, Any]) -> None:
    snapshot = parse_snapshot(envelope)
    levels = [d.light_level for d in snapshot.devices.values() if d.light_level is not None]
    assert levels
    for level in levels:
        assert level.light_level is not None
        assert level.lux == pytest.approx(10 ** ((level.light_level - 1) / 10000), rel=0.01)


def test_old_firmware_without_motion_report(resources: list[dict[str, Any]]) -> None:
    """SML001 on old firmware only sends the deprecated motion.motion."""
    for raw in resources:
        if raw["type"] == "motion" and raw["owner"]["rid"] == OLD_MOTION_SENSOR:
            raw["motion"] = {"motion": True, "motion_valid": True}
    snapshot = parse_snapshot({"errors": [], "data": resources})
    motion = snapshot.devices[OLD_MOTION_SENSOR].motion
    assert motion is not None
    assert motion.motion is True
    assert motion.changed is None
    assert not motion.has_report


def test_unknown_types_and_fields_are_ignored(resources: list[dict[str, Any]]) -> None:
    resources.append({"id": "x", "type": "quantum_teleporter", "owner": {"rid": "y"}})
    resources[0]["brand_new_field"] = {"nested": [1, 2, 3]}
    snapshot = parse_snapshot({"errors": [], "data": resources})
    assert "x" not in snapshot.resources
    assert snapshot.skipped == 0


def test_missing_optional_fields_read_as_none() -> None:
    bare = [
        {"id": "d1", "type": "device"},
        {"id": "p1", "type": "device_power", "owner": {"rid": "d1", "rtype": "device"}},
        {"id": "z1", "type": "zigbee_connectivity", "owner": {"rid": "d1", "rtype": "device"}},
        {"id": "m1", "type": "motion", "owner": {"rid": "d1", "rtype": "device"}},
        {"id": "t1", "type": "temperature"},
        {"id": "r1", "type": "room"},
        {"id": "b1", "type": "bridge"},
    ]
    snapshot = parse_snapshot({"errors": [], "data": bare})
    device = snapshot.devices["d1"]
    assert device.name == "Hue device d1"
    assert device.power is not None
    assert device.power.battery_level is None
    assert device.power.battery_state is None
    assert device.connectivity is not None
    assert device.connectivity.status is None
    assert device.motion == Motion("m1", "motion", device.motion.owner, None, None, None, None)
    assert snapshot.rooms["r1"].name == "Hue room r1"
    assert snapshot.bridge is not None
    assert snapshot.bridge.bridge_id == "b1"


@pytest.mark.parametrize(
    ("power_state", "expected"),
    [
        ({"battery_level": 300, "battery_state": "normal"}, (None, BatteryState.NORMAL)),
        ({"battery_level": -1, "battery_state": "critical"}, (None, BatteryState.CRITICAL)),
        ({"battery_level": "53", "battery_state": "weird"}, (None, None)),
        ({"battery_level": True, "battery_state": 5}, (None, None)),
        ({"battery_level": None, "battery_state": "low"}, (None, BatteryState.LOW)),
    ],
)
def test_absurd_battery_values_read_as_none(
    power_state: dict[str, Any], expected: tuple[int | None, BatteryState | None]
) -> None:
    raw = [
        {"id": "d", "type": "device", "metadata": {"name": "n"}},
        {"id": "p", "type": "device_power", "owner": {"rid": "d"}, "power_state": power_state},
    ]
    # An owner ref without rtype is malformed: the service is parsed but not linked.
    snapshot = parse_snapshot({"errors": [], "data": raw})
    power = snapshot.resources["p"]
    assert (power.battery_level, power.battery_state) == expected  # type: ignore[attr-defined]
    assert snapshot.devices["d"].power is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-07-27T18:33:10.223Z", datetime(2026, 7, 27, 18, 33, 10, 223000, tzinfo=UTC)),
        ("2026-07-27T20:33:10+02:00", datetime(2026, 7, 27, 18, 33, 10, tzinfo=UTC)),
        ("2026-07-27T18:33:10", datetime(2026, 7, 27, 18, 33, 10, tzinfo=UTC)),
        ("1970-01-01T00:00:00.000Z", None),
        ("0001-01-01T00:00:00+05:00", None),
        ("yesterday", None),
        (12345, None),
    ],
)
def test_timestamps(value: object, expected: datetime | None) -> None:
    raw = [{"id": "c", "type": "contact", "contact_report": {"changed": value, "state": "contact"}}]
    contact = parse_snapshot({"errors": [], "data": raw}).resources["c"]
    assert contact.changed == expected  # type: ignore[attr-defined]


def test_malformed_resources_are_skipped_and_counted() -> None:
    raw: list[object] = [
        "not an object",
        {"type": "device"},
        {"id": 5, "type": "device"},
        {"id": "ok", "type": "device"},
    ]
    snapshot = parse_snapshot({"errors": [], "data": raw})
    assert snapshot.skipped == 3
    assert list(snapshot.devices) == ["ok"]


def test_tamper_reports() -> None:
    raw = [
        {
            "id": "t",
            "type": "tamper",
            "tamper_reports": [
                {
                    "changed": "2026-07-01T10:00:00Z",
                    "source": "battery_door",
                    "state": "not_tampered",
                },
                {"changed": "2026-07-02T10:00:00Z", "source": "battery_door", "state": "tampered"},
                "garbage",
            ],
        }
    ]
    tamper = parse_snapshot({"errors": [], "data": raw}).resources["t"]
    assert tamper.tampered is True  # type: ignore[attr-defined]
    assert tamper.changed == datetime(2026, 7, 2, 10, tzinfo=UTC)  # type: ignore[attr-defined]


def test_camera_motion_only_counts_without_a_real_sensor() -> None:
    raw = [
        {"id": "d", "type": "device"},
        {
            "id": "cam",
            "type": "camera_motion",
            "owner": {"rid": "d", "rtype": "device"},
            "motion": {"motion_report": {"changed": "2026-07-01T10:00:00Z", "motion": True}},
        },
        {
            "id": "pir",
            "type": "motion",
            "owner": {"rid": "d", "rtype": "device"},
            "motion": {"motion_report": {"changed": "2026-07-01T09:00:00Z", "motion": False}},
        },
    ]
    device: Device = parse_snapshot({"errors": [], "data": raw}).devices["d"]
    assert device.motion is not None
    assert device.motion.id == "pir"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "JSON object"),
        ({"errors": [{"description": "unauthorized user"}], "data": []}, "unauthorized user"),
        ({"errors": [{}] * 5, "data": []}, r"\+2 more"),
        ({"errors": "boom", "data": []}, "malformed"),
        ({"errors": [], "data": {}}, "list"),
        ({"errors": []}, "list"),
    ],
)
def test_bad_envelopes_raise_response_error(payload: object, message: str) -> None:
    with pytest.raises(HueResponseError, match=message):
        parse_snapshot(payload)


def test_newest_tamper_report_per_source_decides() -> None:
    raw = [
        {
            "id": "t",
            "type": "tamper",
            "tamper_reports": [
                {"changed": "2026-07-01T10:00:00Z", "source": "battery_door", "state": "tampered"},
                {
                    "changed": "2026-07-02T10:00:00Z",
                    "source": "battery_door",
                    "state": "not_tampered",
                },
                {"source": "casing", "state": "tampered"},  # undated: older than any dated
                {"changed": "2026-07-01T09:00:00Z", "source": "casing", "state": "not_tampered"},
            ],
        }
    ]
    tamper = parse_snapshot({"errors": [], "data": raw}).resources["t"]
    assert tamper.tampered is False  # type: ignore[attr-defined]
    assert tamper.changed == datetime(2026, 7, 2, 10, tzinfo=UTC)  # type: ignore[attr-defined]


def test_zgp_connectivity_is_connectivity() -> None:
    raw = [
        {"id": "tap", "type": "device", "product_data": {"model_id": "ZGPSWITCH"}},
        {
            "id": "z",
            "type": "zgp_connectivity",
            "owner": {"rid": "tap", "rtype": "device"},
            "status": "disconnected",
            "source_id": "00:00:00:00:01:6f:0a:11",
        },
    ]
    device = parse_snapshot({"errors": [], "data": raw}).devices["tap"]
    assert device.connectivity is not None
    assert device.connectivity.status is ConnectivityStatus.DISCONNECTED


def test_orphans_are_counted_and_listed() -> None:
    raw = [
        {"id": "d", "type": "device"},
        {"id": "p", "type": "device_power", "owner": {"rid": "gone", "rtype": "device"}},
        {"id": "m", "type": "motion", "owner": {"rid": "gone", "rtype": "device"}},
        {"id": "ok", "type": "device_power", "owner": {"rid": "d", "rtype": "device"}},
        # Room-level motion belongs to a room, not a device: never an orphan.
        {"id": "g", "type": "grouped_motion", "owner": {"rid": "r", "rtype": "room"}},
    ]
    snapshot = parse_snapshot({"errors": [], "data": raw})
    assert snapshot.skipped == 2
    assert [(ref.rid, ref.rtype) for ref in snapshot.orphans] == [
        ("p", "device_power"),
        ("m", "motion"),
    ]
    assert snapshot.devices["d"].power is not None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Kitchen \ud800sensor", "Kitchen \ufffdsensor"),  # a lone surrogate
        ("Hall\x00way\nsensor\x1b[31m", "Hall way sensor [31m"),
        ("  \t ", "Hue device ab12"),
        ("", "Hue device ab12"),
        (None, "Hue device ab12"),
        ("\u202eevil", "evil"),
        ("x" * 500, "x" * 63 + "…"),
        ("Wohnzimmer Bewegungsmelder", "Wohnzimmer Bewegungsmelder"),
    ],
)
def test_names_are_made_safe_once(name: object, expected: str) -> None:
    raw = [
        {"id": "ab12-cd", "type": "device", "metadata": {"name": name}},
        {"id": "r", "type": "room", "metadata": {"name": name}, "children": []},
    ]
    snapshot = parse_snapshot({"errors": [], "data": raw})
    assert snapshot.devices["ab12-cd"].name == expected
    assert snapshot.rooms["r"].name == expected.replace("Hue device ab12", "Hue room r")
    snapshot.devices["ab12-cd"].name.encode()  # valid Unicode: no surrogate left


def test_ids_a_bridge_would_not_write_are_skipped() -> None:
    raw: list[object] = [
        {"id": "x" * 65, "type": "device"},
        {"id": "bad id", "type": "device"},
        {"id": "\ud800", "type": "device"},
        {"id": "7bd86197-ef7c-7625-3170-1b6de1502441", "type": "device"},
    ]
    snapshot = parse_snapshot({"errors": [], "data": raw})
    assert snapshot.skipped == 3
    assert list(snapshot.devices) == ["7bd86197-ef7c-7625-3170-1b6de1502441"]


def test_a_zone_is_the_area_of_a_device_without_a_room() -> None:
    raw = [
        {"id": "d1", "type": "device"},
        {"id": "d2", "type": "device"},
        {"id": "l2", "type": "light", "owner": {"rid": "d2", "rtype": "device"}},
        {
            "id": "z1",
            "type": "zone",
            "metadata": {"name": "Upstairs"},
            "children": [{"rid": "d1", "rtype": "device"}, {"rid": "l2", "rtype": "light"}],
        },
    ]
    snapshot = parse_snapshot({"errors": [], "data": raw})
    assert snapshot.devices["d1"].zone_id == "z1"
    assert snapshot.devices["d2"].zone_id == "z1"
