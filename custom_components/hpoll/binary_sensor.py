"""Binary sensors: of Hue devices (battery low, Zigbee problem, motion, contact, tamper), the
bridge's cloud connection, the home's and each room's inactivity, the relay connection."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, override

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .activity.detector import AWAY, INACTIVE
from .const import (
    GROUP_ACTIVITY,
    GROUP_BATTERY,
    GROUP_CONNECTIVITY,
    GROUP_MOTION,
    GROUP_SECURITY,
)
from .coordinator import HpollConfigEntry, HpollCoordinator
from .entity import (
    HpollBaseEntity,
    HpollDescribedEntity,
    HpollEntity,
    HpollEntityDescription,
    RelayEntity,
    activity_rooms,
    add_described_entities,
    add_entities_as_they_appear,
    bridge_device_info,
    bridge_items,
    forget_entities,
    relay_unique_id,
    room_device_info,
)
from .hue import BatteryState, ConnectivityStatus, Device, Group, Snapshot

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HpollBinarySensorDescription(HpollEntityDescription, BinarySensorEntityDescription):
    """A binary sensor of a Hue device: what it reads."""

    value_fn: Callable[[Device], bool | None]
    attributes_fn: Callable[[HpollCoordinator, Device], dict[str, Any]] | None = None


def _battery_low(device: Device) -> bool | None:
    if device.power is None or device.power.battery_state is None:
        return None
    return device.power.battery_state is not BatteryState.NORMAL


def _zigbee_problem(device: Device) -> bool | None:
    if device.connectivity is None or device.connectivity.status is None:
        return None
    return device.connectivity.status is not ConnectivityStatus.CONNECTED


def _motion_attributes(coordinator: HpollCoordinator, device: Device) -> dict[str, Any]:
    # Without motion_report the bridge only tells the state at the moment of the poll:
    # movement between two polls can be missed, and automations should know that. A sensor on
    # for hours without a break is faulty (or covered): it adds no activity, and says so.
    motion = device.motion
    stuck = coordinator.monitor.activity.tracker.stuck(dt_util.utcnow())
    return {
        "activity_sampled": motion is not None and not motion.has_report,
        "stuck": motion is not None and motion.id in stuck,
    }


BINARY_SENSORS: tuple[HpollBinarySensorDescription, ...] = (
    HpollBinarySensorDescription(
        key="battery_low",
        translation_key="battery_low",
        group=GROUP_BATTERY,
        device_class=BinarySensorDeviceClass.BATTERY,
        entity_category=EntityCategory.DIAGNOSTIC,
        exists_fn=lambda d: d.power is not None,
        value_fn=_battery_low,
    ),
    HpollBinarySensorDescription(
        key="zigbee_connectivity",
        translation_key="zigbee_connectivity",
        group=GROUP_CONNECTIVITY,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        exists_fn=lambda d: d.connectivity is not None,
        value_fn=_zigbee_problem,
    ),
    HpollBinarySensorDescription(
        key="motion",
        translation_key="motion",
        group=GROUP_MOTION,
        device_class=BinarySensorDeviceClass.MOTION,
        exists_fn=lambda d: d.motion is not None,
        value_fn=lambda d: d.motion.motion if d.motion and d.motion.enabled is not False else None,
        attributes_fn=_motion_attributes,
    ),
    HpollBinarySensorDescription(
        key="contact",
        group=GROUP_SECURITY,
        device_class=BinarySensorDeviceClass.OPENING,
        exists_fn=lambda d: d.contact is not None,
        value_fn=lambda d: d.contact.is_open if d.contact else None,
    ),
    HpollBinarySensorDescription(
        key="tamper",
        group=GROUP_SECURITY,
        device_class=BinarySensorDeviceClass.TAMPER,
        entity_category=EntityCategory.DIAGNOSTIC,
        exists_fn=lambda d: d.tamper is not None,
        value_fn=lambda d: d.tamper.tampered if d.tamper else None,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HpollConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The bridge's connection, the home's and rooms' inactivity, the relay connection, and
    binary sensors for every device."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities([BridgeConnectionSensor(coordinator)])
    if (pusher := entry.runtime_data.pusher) is not None:
        async_add_entities([RelayConnectionSensor(pusher)])
    else:
        key = RelayConnectionSensor.key
        forget_entities(hass, Platform.BINARY_SENSOR, [relay_unique_id(coordinator, key)])

    def home(coordinator: HpollCoordinator, _snapshot: Snapshot) -> list[HpollBaseEntity]:
        return [InactiveSensor(coordinator), LowActivitySensor(coordinator)]

    def room(coordinator: HpollCoordinator, room: Group) -> list[HpollBaseEntity]:
        return [RoomInactiveSensor(coordinator, room)]

    add_entities_as_they_appear(entry, async_add_entities, bridge_items, home)
    add_entities_as_they_appear(entry, async_add_entities, activity_rooms, room)
    add_described_entities(entry, async_add_entities, HpollBinarySensor, BINARY_SENSORS)


class HpollBinarySensor(HpollDescribedEntity, BinarySensorEntity):
    """A yes/no reading of a Hue device."""

    entity_description: HpollBinarySensorDescription

    @property
    @override
    def is_on(self) -> bool | None:
        device = self.device
        return self.entity_description.value_fn(device) if device is not None else None

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any] | None:
        attributes_fn = self.entity_description.attributes_fn
        device = self.device
        return attributes_fn(self.coordinator, device) if attributes_fn and device else None

    @override
    def fingerprint(self) -> Hashable:
        attributes = self.extra_state_attributes
        return (
            self.available,
            self.is_on,
            tuple(sorted(attributes.items())) if attributes else None,
        )


class BridgeConnectionSensor(HpollEntity, BinarySensorEntity):
    """Is the bridge reachable through the Hue cloud? Never unavailable: it IS the failure."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "cloud_connection"

    def __init__(self, coordinator: HpollCoordinator) -> None:
        """One per bridge."""
        super().__init__(coordinator)
        self._attr_unique_id = f"{coordinator.bridge_id}_cloud_connection"
        self._attr_device_info = bridge_device_info(coordinator)

    @property
    @override
    def available(self) -> bool:
        return True

    @property
    @override
    def is_on(self) -> bool:
        # Off also while a short rate limit keeps the last data on show.
        return self.coordinator.last_update_success and self.coordinator.problem is None

    @property
    @override
    def extra_state_attributes(self) -> dict[str, str | datetime | None]:
        coordinator = self.coordinator
        # No "last success" time here: it would change the state on every poll.
        return {
            "problem": coordinator.problem.value if coordinator.problem else None,
            "offline_since": coordinator.offline_since,
        }

    @override
    def fingerprint(self) -> Hashable:
        return (self.is_on, tuple(self.extra_state_attributes.values()))


class InactiveSensor(HpollEntity, BinarySensorEntity):
    """On when the home's inactivity detector (activity/detector.py) says so: the silence is
    unusual for this home now, or the user's fixed threshold (outside quiet hours) was reached.

    Its attributes are the verdict the relay's alerts also carry: why, since when, the limit
    for this silence, learning, away. Unavailable whenever the bridge cannot be read.
    """

    options_group = GROUP_ACTIVITY

    _attr_translation_key = "inactive"

    def __init__(self, coordinator: HpollCoordinator) -> None:
        """One per home (bridge)."""
        super().__init__(coordinator)
        self._attr_unique_id = f"{coordinator.bridge_id}_home_inactive"
        self._attr_device_info = bridge_device_info(coordinator)

    @property
    @override
    def is_on(self) -> bool | None:
        return self.coordinator.monitor.inactive

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        monitor = self.coordinator.monitor
        verdict = monitor.verdict
        start, end = monitor.quiet_hours
        # Since when and the limit only for an alarm or an absence: while the home is active
        # they would move with every movement (a state write each time for nothing).
        alarm = verdict.state in {INACTIVE, AWAY}
        limit = verdict.limit if verdict.inactive else None
        return {
            "state": verdict.state,
            "reason": verdict.reason,
            "since": verdict.since if alarm else None,
            "limit_minutes": round(limit.total_seconds() / 60) if limit else None,
            "learning": verdict.learning,
            "away": verdict.away,
            "threshold_hours": monitor.inactivity_threshold.total_seconds() / 3600,
            "quiet_start": start.isoformat(timespec="minutes"),
            "quiet_end": end.isoformat(timespec="minutes"),
        }

    @override
    def fingerprint(self) -> Hashable:
        return (self.available, self.is_on, tuple(self.extra_state_attributes.values()))


class LowActivitySensor(HpollEntity, BinarySensorEntity):
    """On when today has far less activity than this home's usual day by now (an illness, a
    bad day): a signal of its own, never an inactivity alarm. Unknown while learning."""

    options_group = GROUP_ACTIVITY

    _attr_translation_key = "low_activity_today"

    def __init__(self, coordinator: HpollCoordinator) -> None:
        """One per home (bridge); the unique id of the "unusually quiet" sensor it replaces."""
        super().__init__(coordinator)
        self._attr_unique_id = f"{coordinator.bridge_id}_home_unusually_quiet"
        self._attr_device_info = bridge_device_info(coordinator)

    @property
    @override
    def is_on(self) -> bool | None:
        verdict = self.coordinator.monitor.verdict
        return None if verdict.learning else verdict.low_activity_today

    @property
    @override
    def extra_state_attributes(self) -> dict[str, bool]:
        return {"learning": self.coordinator.monitor.verdict.learning}

    @override
    def fingerprint(self) -> Hashable:
        return (self.available, self.is_on, self.coordinator.monitor.verdict.learning)


class RoomInactiveSensor(HpollEntity, BinarySensorEntity):
    """No activity in one room for the threshold, outside quiet hours (the home's rule).

    Rooms are empty for hours as a matter of course, so this starts disabled: enable it for a
    room that should see someone regularly (the kitchen, the bathroom).
    """

    options_group = GROUP_ACTIVITY

    _attr_translation_key = "room_inactive"
    _attr_entity_registry_enabled_default = False

    def __init__(self, coordinator: HpollCoordinator, room: Group) -> None:
        """One per room that can see activity."""
        super().__init__(coordinator)
        self.room = room
        self._attr_unique_id = f"{coordinator.bridge_id}_room_{room.id}_inactive"
        self._attr_device_info = room_device_info(coordinator, room)

    @property
    @override
    def available(self) -> bool:
        return super().available and self.room.id in self.coordinator.data.rooms

    @property
    @override
    def is_on(self) -> bool | None:
        return self.coordinator.monitor.inactive_in(self.room.name, dt_util.utcnow())

    @override
    def fingerprint(self) -> Hashable:
        return (self.available, self.is_on)


class RelayConnectionSensor(RelayEntity, BinarySensorEntity):
    """On while reports reach the relay; off (with the reason) when they do not."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY

    key = "relay_connection"

    @property
    @override
    def is_on(self) -> bool | None:
        return self.pusher.connected

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        pusher = self.pusher
        return {
            "problem": pusher.problem.value if pusher.problem else None,
            "last_error": pusher.last_error,
            "retry_at": pusher.retry_at,
        }

    @override
    def fingerprint(self) -> Hashable:
        return (self.is_on, tuple(self.extra_state_attributes.values()))
