"""Reports for the hpoll relay (schema version 1), built from a Snapshot. No Home Assistant here.

The relay validates every field strictly (relay/schema.py) and refuses a report with one bad
field whole; every later report would carry the same device, so ONE odd name would silence the
home. So every text goes out as the relay takes it: valid Unicode on one line, non-blank, at
most :data:`MAX_TEXT` characters (names from the bridge were made safe by the parser already;
the bridge's name comes from the user). A property test builds reports from generated hostile
listings and runs them through the relay's validator; another compares the shape with the
shared example (tests/fixtures/report_v1.json).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
import uuid

from ..hue import Device, Snapshot
from ..hue.text import clean_text
from .tracker import ActivityEvent

SCHEMA_VERSION = 1
#: The relay's limit for every text field.
MAX_TEXT = 200
#: The relay refuses times before this (relay/schema.py EARLIEST): a bridge whose clock was
#: never set reports such times, and ONE of them would have the whole report refused.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _text(value: str, fallback: str) -> str:
    """``value`` as the relay takes it, else ``fallback``."""
    return clean_text(value, MAX_TEXT) or fallback


def _optional_text(value: str | None) -> str | None:
    return clean_text(value, MAX_TEXT) if value is not None else None


def device_kind(device: Device) -> str:
    """A short, stable word for what a device is, for summaries."""
    if device.motion is not None and device.motion.rtype == "motion":
        return "motion_sensor"
    if device.motion is not None:
        return "camera"
    if device.contact is not None:
        return "contact_sensor"
    if device.buttons or device.rotaries:
        return "switch"
    if device.temperature is not None or device.light_level is not None:
        return "sensor"
    return "device"


def last_seen(device: Device) -> datetime | None:
    """The latest moment the device is known to have talked to the bridge.

    CLIP v2 has no "last seen" field; the report times of its sensors are the best evidence.
    """
    times = [
        service.changed
        for service in (device.motion, device.temperature, device.light_level, device.contact)
        if service is not None and service.changed is not None
    ]
    times += [b.updated for b in device.buttons if b.updated is not None]
    times += [r.updated for r in device.rotaries if r.updated is not None]
    return max(times, default=None)


def worth_reporting(device: Device) -> bool:
    """Devices with something a caregiver could act on: battery, Zigbee link, or a sensor."""
    return any(
        (
            device.power,
            device.connectivity,
            device.motion,
            device.contact,
            device.temperature,
            device.buttons,
            device.rotaries,
        )
    )


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _bridge_time(when: datetime | None, now: datetime) -> str | None:
    """A time the bridge reported, as the relay takes it: never after ``now``; None when it
    is older than any real report (an unset clock)."""
    return _iso(min(when, now)) if when is not None and when >= EARLIEST else None


def _verdict(verdict: Mapping[str, Any]) -> dict[str, Any]:
    """The detector's verdict, its times from an unset bridge clock dropped like the others."""
    checked = dict(verdict)
    for key in ("since", "last_activity"):
        text = checked.get(key)
        if isinstance(text, str) and datetime.fromisoformat(text) < EARLIEST:
            checked[key] = None
    return checked


def build_report(
    snapshot: Snapshot,
    *,
    home_id: str,
    bridge_name: str,
    now: datetime,
    activity: Iterable[ActivityEvent] = (),
    counters: Mapping[str, int] | None = None,
    reachable: bool = True,
    offline_since: datetime | None = None,
    report_id: str | None = None,
    verdict: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A report v1 as the relay expects it (JSON-ready). ``verdict``: the inactivity
    detector's (``Verdict.as_report``), which the relay alerts on."""
    bridge = snapshot.bridge
    devices = []
    for device in snapshot.devices.values():
        if not worth_reporting(device):
            continue
        room = snapshot.rooms.get(device.room_id) if device.room_id else None
        power = device.power
        status = device.connectivity.status if device.connectivity else None
        devices.append(
            {
                "id": _text(device.id, "device"),
                "name": _text(device.name, "Hue device"),
                "room": _optional_text(room.name) if room else None,
                "kind": device_kind(device),
                "battery": power.battery_level if power else None,
                "battery_state": power.battery_state.value
                if power and power.battery_state
                else None,
                "connectivity": status.value if status else None,
                "last_seen": _bridge_time(last_seen(device), now),
            }
        )
    report: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "home_id": _text(home_id, "home"),
        "report_id": report_id or str(uuid.uuid4()),
        "sent_at": now.isoformat(),
        "bridge": {
            "id": _text(bridge.bridge_id if bridge else home_id, "bridge"),
            "name": _text(bridge_name, "Hue Bridge"),
            "reachable": reachable,
            "time_zone": _optional_text(bridge.time_zone) if bridge else None,
            "offline_since": _iso(offline_since),
        },
        "devices": devices,
        "activity": [
            {
                "room": _optional_text(event.room),
                "sensor_id": _text(event.sensor_id, "sensor"),
                "at": _bridge_time(event.at, now),
            }
            for event in activity
            if event.at >= EARLIEST
        ],
        "counters": {_text(key, "counter"): value for key, value in (counters or {}).items()},
    }
    if verdict is not None:
        report["verdict"] = _verdict(verdict)
    return report
