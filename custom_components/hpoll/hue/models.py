"""Immutable, typed view of one CLIP v2 resource listing (a :class:`Snapshot`).

Everything above the hue/ package reads these objects, never raw dicts. A field the bridge did not
send is ``None``; a resource type hpoll does not use is not represented at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class BatteryState(StrEnum):
    """``device_power.power_state.battery_state``."""

    NORMAL = "normal"
    LOW = "low"
    CRITICAL = "critical"


class ConnectivityStatus(StrEnum):
    """``zigbee_connectivity.status``."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    CONNECTIVITY_ISSUE = "connectivity_issue"
    UNIDIRECTIONAL_INCOMING = "unidirectional_incoming"
    PENDING_DISCOVERY = "pending_discovery"


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """A link to another resource: ``{"rid": ..., "rtype": ...}``."""

    rid: str
    rtype: str


@dataclass(frozen=True, slots=True)
class Motion:
    """A ``motion`` service, or a room/area-level one (grouped, convenience, security, camera).

    ``changed`` comes from ``motion_report`` and moves on both transitions (movement starts and
    stops). Older sensors have no ``motion_report``: then ``changed`` is None and only the current
    ``motion`` state is known, so activity between polls cannot be recovered.
    """

    id: str
    rtype: str
    owner: ResourceRef | None
    enabled: bool | None
    motion: bool | None
    motion_valid: bool | None
    changed: datetime | None

    @property
    def owner_id(self) -> str | None:
        """Id of the owner: a device, or a room/home/area configuration for area motion."""
        return self.owner.rid if self.owner is not None else None

    @property
    def has_report(self) -> bool:
        """True when the bridge tells when motion last changed."""
        return self.changed is not None


@dataclass(frozen=True, slots=True)
class DevicePower:
    """``device_power``: battery level in percent (None for mains-powered) and state."""

    id: str
    owner_id: str | None
    battery_level: int | None
    battery_state: BatteryState | None


@dataclass(frozen=True, slots=True)
class ZigbeeConnectivity:
    """``zigbee_connectivity``; ``status`` is None for a status this client does not know."""

    id: str
    owner_id: str | None
    status: ConnectivityStatus | None
    mac_address: str | None


@dataclass(frozen=True, slots=True)
class Temperature:
    """``temperature`` in degrees Celsius; ``changed`` doubles as a liveness signal."""

    id: str
    owner_id: str | None
    enabled: bool | None
    temperature: float | None
    changed: datetime | None


@dataclass(frozen=True, slots=True)
class LightLevel:
    """``light_level``: the raw value is 10000 * log10(lux) + 1."""

    id: str
    owner_id: str | None
    enabled: bool | None
    light_level: int | None
    changed: datetime | None

    @property
    def lux(self) -> float | None:
        """Illuminance in lux, rounded to a sensible precision."""
        if self.light_level is None:
            return None
        return round(10 ** ((self.light_level - 1) / 10000), 1)


@dataclass(frozen=True, slots=True)
class Button:
    """``button``; ``updated`` is None when the button was never pressed (Hue sends 1970)."""

    id: str
    owner_id: str | None
    control_id: int | None
    event: str | None
    updated: datetime | None


@dataclass(frozen=True, slots=True)
class RelativeRotary:
    """``relative_rotary``: the last rotation and when it happened."""

    id: str
    owner_id: str | None
    action: str | None
    direction: str | None
    steps: int | None
    updated: datetime | None


@dataclass(frozen=True, slots=True)
class Contact:
    """``contact``: ``state`` is ``contact`` (closed) or ``no_contact`` (open)."""

    id: str
    owner_id: str | None
    enabled: bool | None
    state: str | None
    changed: datetime | None

    @property
    def is_open(self) -> bool | None:
        """True when the contact is open, None when unknown."""
        if self.state is None:
            return None
        return self.state != "contact"


@dataclass(frozen=True, slots=True)
class Tamper:
    """``tamper``: tampered if any source currently reports ``tampered``."""

    id: str
    owner_id: str | None
    tampered: bool
    changed: datetime | None


@dataclass(frozen=True, slots=True)
class Device:
    """A physical device with the services hpoll reads (linked through each service's owner)."""

    id: str
    name: str
    archetype: str | None
    model_id: str | None
    product_name: str | None
    manufacturer: str | None
    software_version: str | None
    room_id: str | None
    #: A zone holding the device (or one of its services): its area when it has no room.
    zone_id: str | None = None
    power: DevicePower | None = None
    connectivity: ZigbeeConnectivity | None = None
    motion: Motion | None = None
    temperature: Temperature | None = None
    light_level: LightLevel | None = None
    contact: Contact | None = None
    tamper: Tamper | None = None
    buttons: tuple[Button, ...] = ()
    rotaries: tuple[RelativeRotary, ...] = ()


@dataclass(frozen=True, slots=True)
class Group:
    """A ``room`` or ``zone``: devices (rooms) or services (zones) grouped under a name."""

    id: str
    rtype: str
    name: str
    archetype: str | None
    children: tuple[ResourceRef, ...]
    grouped_motion_id: str | None

    @property
    def device_ids(self) -> tuple[str, ...]:
        """Ids of the devices directly in this group."""
        return tuple(ref.rid for ref in self.children if ref.rtype == "device")


@dataclass(frozen=True, slots=True)
class Bridge:
    """The ``bridge`` resource: its id (lower-case hex) is the stable identity of a home."""

    id: str
    bridge_id: str
    device_id: str | None
    time_zone: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one ``GET /clip/v2/resource`` told us, indexed for O(1) lookups."""

    bridge: Bridge | None
    #: ``bridge_home``: the whole home, with its home-level grouped motion.
    home: Group | None
    devices: Mapping[str, Device]
    rooms: Mapping[str, Group]
    zones: Mapping[str, Group]
    #: room/home/area-level motion services (grouped, convenience/security area, camera).
    area_motion: Mapping[str, Motion]
    #: every resource parsed into a model, by id (devices, groups, and services alike).
    resources: Mapping[str, object] = field(repr=False)
    #: resources that were present but malformed (missing id/type, wrong shape) and so left out.
    skipped: int = 0
    #: Services whose owner device is not in the listing (counted in ``skipped`` too).
    orphans: tuple[ResourceRef, ...] = ()

    def device_for(self, resource_id: str) -> Device | None:
        """The device owning a service id (or the device with that id)."""
        found = self.resources.get(resource_id)
        if isinstance(found, Device):
            return found
        owner_id = getattr(found, "owner_id", None)
        return self.devices.get(owner_id) if isinstance(owner_id, str) else None

    def room_of(self, device_id: str) -> Group | None:
        """The room a device is in, if any."""
        device = self.devices.get(device_id)
        if device is None or device.room_id is None:
            return None
        return self.rooms.get(device.room_id)
