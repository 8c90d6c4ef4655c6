"""Parse a CLIP v2 resource listing into a :class:`Snapshot`, once, defensively.

The envelope must be right (a dict with an empty ``errors`` and a ``data`` list), otherwise
:class:`HueResponseError`. Inside it, the bridge is trusted as little as possible: a resource
without an id or type is counted in ``Snapshot.skipped`` and left out, a field of the wrong type
reads as None, and unknown resource types and fields are ignored, so new firmware cannot break a
poll. A resource whose id is not one a bridge would write (see :func:`text.valid_id`) is skipped
too, and so is a service whose owner device is missing (an orphan: counted, and listed in
``Snapshot.orphans`` for diagnostics). Names are made safe here, once (:mod:`.text`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
import math
import re
from typing import Any

from .errors import HueResponseError
from .models import (
    BatteryState,
    Bridge,
    Button,
    ConnectivityStatus,
    Contact,
    Device,
    DevicePower,
    Group,
    LightLevel,
    Motion,
    RelativeRotary,
    ResourceRef,
    Snapshot,
    Tamper,
    Temperature,
    ZigbeeConnectivity,
)
from .text import clean_name, clean_text, fallback_name, valid_id

type RawResource = Mapping[str, Any]

_EMPTY: RawResource = {}
#: 10000 * log10(lux) + 1 for ~1,000,000 lux: far above direct sunlight.
MAX_LIGHT_LEVEL = 60_001
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BATTERY_STATES = {state.value: state for state in BatteryState}
_CONNECTIVITY = {status.value: status for status in ConnectivityStatus}
_TIME_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")
MAX_TIME_ZONE = 64

#: Room-, home- and area-level motion: not tied to one device's sensor.
AREA_MOTION_TYPES = frozenset({"grouped_motion", "convenience_area_motion", "security_area_motion"})


def _obj(value: object) -> RawResource:
    return value if isinstance(value, dict) else _EMPTY


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def _time(value: object) -> datetime | None:
    """An ISO 8601 timestamp as an aware UTC datetime; the Unix epoch means 'never'."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return None if parsed <= _EPOCH else parsed


def _ref(value: object) -> ResourceRef | None:
    if not isinstance(value, dict):
        return None
    rid, rtype = value.get("rid"), value.get("rtype")
    if isinstance(rid, str) and isinstance(rtype, str):
        return ResourceRef(rid, rtype)
    return None


def _refs(value: object) -> tuple[ResourceRef, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(ref for item in value if (ref := _ref(item)) is not None)


def _owner_id(raw: RawResource) -> str | None:
    owner = _ref(raw.get("owner"))
    return owner.rid if owner is not None else None


def _motion(rid: str, rtype: str, raw: RawResource) -> Motion:
    block = _obj(raw.get("motion"))
    report = _obj(block.get("motion_report"))
    # motion_report is authoritative; the top-level motion/motion_valid are deprecated and are
    # all that older firmware (e.g. SML001) sends.
    state = _bool(report.get("motion")) if "motion" in report else _bool(block.get("motion"))
    return Motion(
        id=rid,
        rtype=rtype,
        owner=_ref(raw.get("owner")),
        enabled=_bool(raw.get("enabled")),
        motion=state,
        motion_valid=_bool(block.get("motion_valid")),
        changed=_time(report.get("changed")),
    )


def _device_power(rid: str, _rtype: str, raw: RawResource) -> DevicePower:
    state = _obj(raw.get("power_state"))
    level = _int(state.get("battery_level"))
    battery_state = state.get("battery_state")
    return DevicePower(
        id=rid,
        owner_id=_owner_id(raw),
        battery_level=level if level is not None and 0 <= level <= 100 else None,
        battery_state=_BATTERY_STATES.get(battery_state)
        if isinstance(battery_state, str)
        else None,
    )


def _zigbee(rid: str, _rtype: str, raw: RawResource) -> ZigbeeConnectivity:
    # zgp_connectivity (Zigbee Green Power: Hue Tap, Friends of Hue switches) has the same
    # status; it names the device by source_id instead of a MAC address.
    status = raw.get("status")
    return ZigbeeConnectivity(
        id=rid,
        owner_id=_owner_id(raw),
        status=_CONNECTIVITY.get(status) if isinstance(status, str) else None,
        mac_address=clean_text(raw.get("mac_address")) or clean_text(raw.get("source_id")),
    )


def _temperature(rid: str, _rtype: str, raw: RawResource) -> Temperature:
    block = _obj(raw.get("temperature"))
    report = _obj(block.get("temperature_report"))
    value = report.get("temperature", block.get("temperature"))
    return Temperature(
        id=rid,
        owner_id=_owner_id(raw),
        enabled=_bool(raw.get("enabled")),
        temperature=_float(value),
        changed=_time(report.get("changed")),
    )


def _light_level(rid: str, _rtype: str, raw: RawResource) -> LightLevel:
    block = _obj(raw.get("light"))
    report = _obj(block.get("light_level_report"))
    value = _int(report.get("light_level", block.get("light_level")))
    return LightLevel(
        id=rid,
        owner_id=_owner_id(raw),
        enabled=_bool(raw.get("enabled")),
        light_level=value if value is not None and 0 <= value <= MAX_LIGHT_LEVEL else None,
        changed=_time(report.get("changed")),
    )


def _button(rid: str, _rtype: str, raw: RawResource) -> Button:
    block = _obj(raw.get("button"))
    report = _obj(block.get("button_report"))
    return Button(
        id=rid,
        owner_id=_owner_id(raw),
        control_id=_int(_obj(raw.get("metadata")).get("control_id")),
        event=_str(report.get("event")) or _str(block.get("last_event")),
        updated=_time(report.get("updated")),
    )


def _rotary(rid: str, _rtype: str, raw: RawResource) -> RelativeRotary:
    block = _obj(raw.get("relative_rotary"))
    report = _obj(block.get("rotary_report")) or _obj(block.get("last_event"))
    rotation = _obj(report.get("rotation"))
    return RelativeRotary(
        id=rid,
        owner_id=_owner_id(raw),
        action=_str(report.get("action")),
        direction=_str(rotation.get("direction")),
        steps=_int(rotation.get("steps")),
        updated=_time(report.get("updated")),
    )


def _contact(rid: str, _rtype: str, raw: RawResource) -> Contact:
    report = _obj(raw.get("contact_report"))
    return Contact(
        id=rid,
        owner_id=_owner_id(raw),
        enabled=_bool(raw.get("enabled")),
        state=_str(report.get("state")),
        changed=_time(report.get("changed")),
    )


def _tamper(rid: str, _rtype: str, raw: RawResource) -> Tamper:
    """The NEWEST report of each source (battery door, casing ...) decides for that source; the
    device is tampered while any source's newest report says so."""
    reports = raw.get("tamper_reports")
    newest: dict[str | None, tuple[datetime, bool]] = {}
    for item in reports if isinstance(reports, list) else ():
        report = _obj(item)
        state = report.get("state")
        if state not in ("tampered", "not_tampered"):
            continue
        changed = _time(report.get("changed")) or _EPOCH  # undated: older than any dated one
        source = _str(report.get("source"))
        if source not in newest or changed >= newest[source][0]:
            newest[source] = (changed, state == "tampered")
    latest = max((changed for changed, _ in newest.values()), default=None)
    return Tamper(
        id=rid,
        owner_id=_owner_id(raw),
        tampered=any(tampered for _, tampered in newest.values()),
        changed=latest if latest is not None and latest > _EPOCH else None,
    )


def _group(rid: str, rtype: str, raw: RawResource) -> Group:
    metadata = _obj(raw.get("metadata"))
    services = _refs(raw.get("services"))
    grouped_motion = next((ref.rid for ref in services if ref.rtype == "grouped_motion"), None)
    return Group(
        id=rid,
        rtype=rtype,
        name=clean_name(
            metadata.get("name"),
            "Home" if rtype == "bridge_home" else fallback_name(rtype, rid),
        ),
        archetype=clean_text(metadata.get("archetype")),
        children=_refs(raw.get("children")),
        grouped_motion_id=grouped_motion,
    )


def _bridge(rid: str, _rtype: str, raw: RawResource) -> Bridge:
    return Bridge(
        id=rid,
        bridge_id=(valid_id(raw.get("bridge_id")) or rid).lower(),
        device_id=_owner_id(raw),
        time_zone=_time_zone(_obj(raw.get("time_zone")).get("time_zone")),
    )


def _time_zone(value: object) -> str | None:
    """An IANA time zone name ("Europe/Amsterdam"), else None."""
    if isinstance(value, str) and len(value) <= MAX_TIME_ZONE and _TIME_ZONE.fullmatch(value):
        return value
    return None


type _Parser = Callable[[str, str, RawResource], object]

_SERVICE_PARSERS: dict[str, _Parser] = {
    "motion": _motion,
    "camera_motion": _motion,
    "grouped_motion": _motion,
    "convenience_area_motion": _motion,
    "security_area_motion": _motion,
    "device_power": _device_power,
    "zigbee_connectivity": _zigbee,
    "zgp_connectivity": _zigbee,
    "temperature": _temperature,
    "light_level": _light_level,
    "button": _button,
    "relative_rotary": _rotary,
    "contact": _contact,
    "tamper": _tamper,
    "room": _group,
    "zone": _group,
    "bridge_home": _group,
    "bridge": _bridge,
}


def _device(
    rid: str,
    raw: RawResource,
    services: list[object],
    room_id: str | None,
    zone_id: str | None,
) -> Device:
    metadata = _obj(raw.get("metadata"))
    product = _obj(raw.get("product_data"))
    found: dict[str, Any] = {}
    buttons: list[Button] = []
    rotaries: list[RelativeRotary] = []
    for service in services:
        match service:
            case Button():
                buttons.append(service)
            case RelativeRotary():
                rotaries.append(service)
            case DevicePower():
                found.setdefault("power", service)
            case ZigbeeConnectivity():
                found.setdefault("connectivity", service)
            case Motion():
                # A camera's motion counts only when the device has no real motion sensor.
                if service.rtype == "motion" or "motion" not in found:
                    found["motion"] = service
            case Temperature():
                found.setdefault("temperature", service)
            case LightLevel():
                found.setdefault("light_level", service)
            case Contact():
                found.setdefault("contact", service)
            case Tamper():
                found.setdefault("tamper", service)
    product_name = clean_text(product.get("product_name"))
    return Device(
        id=rid,
        name=clean_name(metadata.get("name"), product_name or fallback_name("device", rid)),
        archetype=clean_text(metadata.get("archetype"))
        or clean_text(product.get("product_archetype")),
        model_id=clean_text(product.get("model_id")),
        product_name=product_name,
        manufacturer=clean_text(product.get("manufacturer_name")),
        software_version=clean_text(product.get("software_version")),
        room_id=room_id,
        zone_id=zone_id,
        buttons=tuple(sorted(buttons, key=lambda b: (b.control_id or 0, b.id))),
        rotaries=tuple(rotaries),
        **found,
    )


def parse_snapshot(payload: object) -> Snapshot:
    """Parse the body of ``GET /clip/v2/resource`` (already JSON-decoded)."""
    services = _Services.parse(_resource_list(payload))
    rooms: dict[str, Group] = {}
    zones: dict[str, Group] = {}
    area_motion: dict[str, Motion] = {}
    bridge: Bridge | None = None
    home: Group | None = None
    room_of: dict[str, str] = {}
    zone_of: dict[str, str] = {}
    for model in services.resources.values():
        match model:
            case Group(rtype="room"):
                rooms[model.id] = model
                for device_id in model.device_ids:
                    room_of.setdefault(device_id, model.id)
            case Group(rtype="zone"):
                zones[model.id] = model
                # Zones hold lights and other services (or devices): their owners are in it.
                for ref in model.children:
                    device_id = services.owner_of.get(ref.rid, ref.rid)
                    if ref.rtype == "device" or ref.rid in services.owner_of:
                        zone_of.setdefault(device_id, model.id)
            case Group():
                home = model
            case Motion() if model.rtype in AREA_MOTION_TYPES:
                area_motion[model.id] = model
            case Bridge():
                bridge = model

    devices: dict[str, Device] = {}
    for rid, raw in services.raw_devices:
        owned = [services.resources[service_id] for service_id in services.by_owner.pop(rid, [])]
        device = _device(rid, raw, owned, room_of.get(rid), zone_of.get(rid))
        devices[rid] = device
        services.resources[rid] = device
    # What is left in by_owner belongs to devices the listing does not have.
    orphans = tuple(
        sorted(
            (
                ResourceRef(rid, services.rtype_of[rid])
                for owned in services.by_owner.values()
                for rid in owned
            ),
            key=lambda ref: (ref.rtype, ref.rid),
        )
    )

    return Snapshot(
        bridge=bridge,
        home=home,
        devices=devices,
        rooms=rooms,
        zones=zones,
        area_motion=area_motion,
        resources=services.resources,
        skipped=services.skipped + len(orphans),
        orphans=orphans,
    )


def _resource_list(payload: object) -> list[object]:
    """The ``data`` list of a well-formed envelope, else HueResponseError."""
    if not isinstance(payload, dict):
        raise HueResponseError("expected a JSON object with 'errors' and 'data'")
    errors = payload.get("errors")
    if errors:
        raise HueResponseError(f"the bridge reported errors: {_describe_errors(errors)}")
    data = payload.get("data")
    if not isinstance(data, list):
        raise HueResponseError("expected 'data' to be a list of resources")
    return data


@dataclass(slots=True)
class _Services:
    """First pass: every service parsed and grouped by owner; devices kept raw for the second."""

    resources: dict[str, object] = field(default_factory=dict)
    raw_devices: list[tuple[str, RawResource]] = field(default_factory=list)
    #: Device id -> ids of the services it owns.
    by_owner: dict[str, list[str]] = field(default_factory=dict)
    #: Service id -> the device that owns it.
    owner_of: dict[str, str] = field(default_factory=dict)
    rtype_of: dict[str, str] = field(default_factory=dict)
    skipped: int = 0

    @classmethod
    def parse(cls, data: list[object]) -> _Services:
        found = cls()
        for item in data:
            raw = _obj(item)
            rid, rtype = valid_id(raw.get("id")), raw.get("type")
            if rid is None or not isinstance(rtype, str):
                found.skipped += 1
                continue
            if rtype == "device":
                found.raw_devices.append((rid, raw))
                continue
            owner = _ref(raw.get("owner"))
            owner_id = owner.rid if owner is not None and owner.rtype == "device" else None
            if owner_id is not None:  # also for lights: zones name them, not their devices
                found.owner_of[rid] = owner_id
            parse = _SERVICE_PARSERS.get(rtype)
            if parse is None:
                continue
            found.resources[rid] = parse(rid, rtype, raw)
            found.rtype_of[rid] = rtype
            if owner_id is not None:
                found.by_owner.setdefault(owner_id, []).append(rid)
        return found


def _describe_errors(errors: object) -> str:
    """Short, secret-free text of a CLIP v2 ``errors`` array."""
    if not isinstance(errors, list):
        return "malformed 'errors'"
    texts = [_str(_obj(error).get("description")) or "unknown error" for error in errors[:3]]
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(texts) + more
