"""Parse a CLIP v2 resource listing into a :class:`Snapshot`, once, defensively.

The envelope must be right (a dict with an empty ``errors`` and a ``data`` list), otherwise
:class:`HueResponseError`. Inside it, the bridge is trusted as little as possible: a resource
without an id or type is counted in ``Snapshot.skipped`` and left out, a field of the wrong type
reads as None, and unknown resource types and fields are ignored, so new firmware cannot break a
poll.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
import math
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

type RawResource = Mapping[str, Any]

_EMPTY: RawResource = {}
#: 10000 * log10(lux) + 1 for ~1,000,000 lux: far above direct sunlight.
MAX_LIGHT_LEVEL = 60_001
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BATTERY_STATES = {state.value: state for state in BatteryState}
_CONNECTIVITY = {status.value: status for status in ConnectivityStatus}

#: Room-, home- and area-level motion: not tied to one device's sensor.
AREA_MOTION_TYPES = frozenset({"grouped_motion", "convenience_area_motion", "security_area_motion"})
DEVICE_MOTION_TYPES = frozenset({"motion", "camera_motion"})


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
    status = raw.get("status")
    return ZigbeeConnectivity(
        id=rid,
        owner_id=_owner_id(raw),
        status=_CONNECTIVITY.get(status) if isinstance(status, str) else None,
        mac_address=_str(raw.get("mac_address")),
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
    reports = raw.get("tamper_reports")
    tampered = False
    latest: datetime | None = None
    for item in reports if isinstance(reports, list) else ():
        report = _obj(item)
        tampered = tampered or report.get("state") == "tampered"
        changed = _time(report.get("changed"))
        if changed is not None and (latest is None or changed > latest):
            latest = changed
    return Tamper(id=rid, owner_id=_owner_id(raw), tampered=tampered, changed=latest)


def _group(rid: str, rtype: str, raw: RawResource) -> Group:
    metadata = _obj(raw.get("metadata"))
    services = _refs(raw.get("services"))
    grouped_motion = next((ref.rid for ref in services if ref.rtype == "grouped_motion"), None)
    return Group(
        id=rid,
        rtype=rtype,
        name=_str(metadata.get("name")) or ("Home" if rtype == "bridge_home" else rid),
        archetype=_str(metadata.get("archetype")),
        children=_refs(raw.get("children")),
        grouped_motion_id=grouped_motion,
    )


def _bridge(rid: str, _rtype: str, raw: RawResource) -> Bridge:
    return Bridge(
        id=rid,
        bridge_id=(_str(raw.get("bridge_id")) or rid).lower(),
        device_id=_owner_id(raw),
        time_zone=_str(_obj(raw.get("time_zone")).get("time_zone")),
    )


type _Parser = Callable[[str, str, RawResource], object]

_SERVICE_PARSERS: dict[str, _Parser] = {
    "motion": _motion,
    "camera_motion": _motion,
    "grouped_motion": _motion,
    "convenience_area_motion": _motion,
    "security_area_motion": _motion,
    "device_power": _device_power,
    "zigbee_connectivity": _zigbee,
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


def _device(rid: str, raw: RawResource, services: list[object], room_id: str | None) -> Device:
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
    product_name = _str(product.get("product_name"))
    return Device(
        id=rid,
        name=_str(metadata.get("name")) or product_name or rid,
        archetype=_str(metadata.get("archetype")) or _str(product.get("product_archetype")),
        model_id=_str(product.get("model_id")),
        product_name=product_name,
        manufacturer=_str(product.get("manufacturer_name")),
        software_version=_str(product.get("software_version")),
        room_id=room_id,
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
    for model in services.resources.values():
        match model:
            case Group(rtype="room"):
                rooms[model.id] = model
                for device_id in model.device_ids:
                    room_of.setdefault(device_id, model.id)
            case Group(rtype="zone"):
                zones[model.id] = model
            case Group():
                home = model
            case Motion() if model.rtype in AREA_MOTION_TYPES:
                area_motion[model.id] = model
            case Bridge():
                bridge = model

    devices: dict[str, Device] = {}
    for rid, raw in services.raw_devices:
        device = _device(rid, raw, services.by_owner.get(rid, []), room_of.get(rid))
        devices[rid] = device
        services.resources[rid] = device

    return Snapshot(
        bridge=bridge,
        home=home,
        devices=devices,
        rooms=rooms,
        zones=zones,
        area_motion=area_motion,
        resources=services.resources,
        skipped=services.skipped,
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
    by_owner: dict[str, list[object]] = field(default_factory=dict)
    skipped: int = 0

    @classmethod
    def parse(cls, data: list[object]) -> _Services:
        found = cls()
        for raw in data:
            if not isinstance(raw, dict):
                found.skipped += 1
                continue
            rid, rtype = raw.get("id"), raw.get("type")
            if not isinstance(rid, str) or not isinstance(rtype, str):
                found.skipped += 1
                continue
            if rtype == "device":
                found.raw_devices.append((rid, raw))
                continue
            parse = _SERVICE_PARSERS.get(rtype)
            if parse is None:
                continue
            model = parse(rid, rtype, raw)
            found.resources[rid] = model
            owner_id = getattr(model, "owner_id", None)
            if owner_id is not None:
                found.by_owner.setdefault(owner_id, []).append(model)
        return found


def _describe_errors(errors: object) -> str:
    """Short, secret-free text of a CLIP v2 ``errors`` array."""
    if not isinstance(errors, list):
        return "malformed 'errors'"
    texts = [_str(_obj(error).get("description")) or "unknown error" for error in errors[:3]]
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(texts) + more
