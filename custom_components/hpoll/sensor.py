"""Sensors: of Hue devices (battery, Zigbee status, temperature, light level, last motion), the
home's and each room's activity, and the push to the relay."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    LIGHT_LUX,
    PERCENTAGE,
    EntityCategory,
    Platform,
    UnitOfTemperature,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .activity.log import HOME
from .activity.tracker import activity_source_ids
from .const import (
    GROUP_ACTIVITY,
    GROUP_BATTERY,
    GROUP_CONNECTIVITY,
    GROUP_ENVIRONMENT,
    GROUP_MOTION,
)
from .coordinator import HpollConfigEntry, HpollCoordinator
from .entity import (
    HpollBaseEntity,
    HpollDescribedEntity,
    HpollDeviceEntity,
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
from .hue import ConnectivityStatus, Device, Group, Snapshot

PARALLEL_UPDATES = 0

type SensorValue = str | int | float | datetime | None


@dataclass(frozen=True, kw_only=True)
class HpollSensorDescription(HpollEntityDescription, SensorEntityDescription):
    """A sensor of a Hue device: what it reads."""

    value_fn: Callable[[Device], SensorValue]


SENSORS: tuple[HpollSensorDescription, ...] = (
    HpollSensorDescription(
        key="battery",
        group=GROUP_BATTERY,
        device_class=SensorDeviceClass.BATTERY,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        exists_fn=lambda d: d.power is not None,
        value_fn=lambda d: d.power.battery_level if d.power else None,
    ),
    HpollSensorDescription(
        key="zigbee_status",
        translation_key="zigbee_status",
        group=GROUP_CONNECTIVITY,
        device_class=SensorDeviceClass.ENUM,
        options=[status.value for status in ConnectivityStatus],
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        exists_fn=lambda d: d.connectivity is not None,
        value_fn=lambda d: (
            d.connectivity.status.value if d.connectivity and d.connectivity.status else None
        ),
    ),
    HpollSensorDescription(
        key="temperature",
        group=GROUP_ENVIRONMENT,
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        exists_fn=lambda d: d.temperature is not None,
        value_fn=lambda d: d.temperature.temperature if d.temperature else None,
    ),
    HpollSensorDescription(
        key="illuminance",
        group=GROUP_ENVIRONMENT,
        device_class=SensorDeviceClass.ILLUMINANCE,
        native_unit_of_measurement=LIGHT_LUX,
        state_class=SensorStateClass.MEASUREMENT,
        exists_fn=lambda d: d.light_level is not None,
        value_fn=lambda d: d.light_level.lux if d.light_level else None,
    ),
    HpollSensorDescription(
        key="last_motion",
        translation_key="last_motion",
        group=GROUP_MOTION,
        device_class=SensorDeviceClass.TIMESTAMP,
        # Only sensors whose bridge reports when motion changed can tell this.
        exists_fn=lambda d: (
            d.motion is not None and d.motion.rtype == "motion" and d.motion.changed is not None
        ),
        value_fn=lambda d: d.motion.changed if d.motion else None,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HpollConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Sensors for every device that has the matching service, now and when paired later; the
    home's activity, each room's, and the relay's."""
    add_described_entities(entry, async_add_entities, HpollSensor, SENSORS)

    def home(coordinator: HpollCoordinator, _snapshot: Snapshot) -> list[ActivitySensor]:
        return activity_sensors(coordinator, None)

    def outside_rooms(coordinator: HpollCoordinator, device: Device) -> list[HpollBaseEntity]:
        if device.room_id is None and activity_source_ids(device):
            return [DeviceLastActivitySensor(coordinator, device, "last_activity")]
        return []

    add_entities_as_they_appear(entry, async_add_entities, bridge_items, home)
    add_entities_as_they_appear(entry, async_add_entities, activity_rooms, activity_sensors)
    add_entities_as_they_appear(entry, async_add_entities, lambda s: s.devices, outside_rooms)
    relay_sensors: tuple[type[RelayEntity], ...] = (RelayQueueSensor, RelayLastPushSensor)
    if (pusher := entry.runtime_data.pusher) is not None:
        async_add_entities([sensor(pusher) for sensor in relay_sensors])
    else:
        coordinator = entry.runtime_data.coordinator
        forget_entities(
            hass, Platform.SENSOR, [relay_unique_id(coordinator, s.key) for s in relay_sensors]
        )


class HpollSensor(HpollDescribedEntity, SensorEntity):
    """A sensor reading one value of a Hue device."""

    entity_description: HpollSensorDescription

    @property
    @override
    def native_value(self) -> SensorValue:
        device = self.device
        return self.entity_description.value_fn(device) if device is not None else None

    @override
    def fingerprint(self) -> Hashable:
        return (self.available, self.native_value)


class ActivitySensor(HpollEntity, SensorEntity):
    """Base: one room (or the home, room_id None) of the coordinator's ActivityLog."""

    options_group = GROUP_ACTIVITY

    #: Translation keys: (for the home, for a room).
    keys: tuple[str, str]

    def __init__(self, coordinator: HpollCoordinator, room: Group | None, key: str) -> None:
        """Unique id: bridge, room (or 'home'), key."""
        super().__init__(coordinator)
        self.room_id = room.id if room else None
        self.room_name = room.name if room else HOME
        scope = f"room_{room.id}" if room else "home"
        self._attr_unique_id = f"{coordinator.bridge_id}_{scope}_{key}"
        self._attr_translation_key = self.keys[1] if room else self.keys[0]
        self._attr_device_info = (
            bridge_device_info(coordinator) if room is None else room_device_info(coordinator, room)
        )

    @property
    @override
    def available(self) -> bool:
        # A bridge we cannot reach tells nothing about activity: unknown, never "quiet".
        return super().available and (
            self.room_id is None or self.room_id in self.coordinator.data.rooms
        )


class DeviceLastActivitySensor(HpollDeviceEntity, SensorEntity):
    """When a sensor outside any Hue room last saw someone (its own report times).

    Such sensors (children of the bridge's home on many bridges) count for the home, but have
    no room whose activity would show them.
    """

    _attr_device_class = SensorDeviceClass.TIMESTAMP
    _attr_translation_key = "last_activity"
    options_group = GROUP_ACTIVITY

    @property
    @override
    def native_value(self) -> datetime | None:
        device = self.device
        if device is None:
            return None
        return self.coordinator.monitor.activity.tracker.last_activity(device, dt_util.utcnow())

    @override
    def fingerprint(self) -> Hashable:
        return (self.available, self.native_value)


class LastActivitySensor(ActivitySensor):
    """When someone was last active there (a sensor's own report time)."""

    _attr_device_class = SensorDeviceClass.TIMESTAMP
    keys = ("home_last_activity", "room_last_activity")

    @property
    @override
    def native_value(self) -> datetime | None:
        return self.coordinator.monitor.activity.last.get(self.room_name)

    @override
    def fingerprint(self) -> Hashable:
        return (self.available, self.native_value)


class ActivityTodaySensor(ActivitySensor):
    """How many activity events today (local day of the home), reset at midnight."""

    _attr_state_class = SensorStateClass.TOTAL_INCREASING
    keys = ("home_activity_today", "room_activity_today")

    @property
    @override
    def native_value(self) -> int:
        return self.coordinator.monitor.activity.count_today(self.room_name, dt_util.utcnow())

    @override
    def fingerprint(self) -> Hashable:
        return (self.available, self.native_value)


class MinutesSinceActivitySensor(ActivitySensor):
    """Minutes since the last activity in the home.

    It changes with every poll by nature (history and recorder noise), so it starts disabled;
    "Last activity" says the same without that cost.
    """

    _attr_entity_registry_enabled_default = False
    _attr_native_unit_of_measurement = UnitOfTime.MINUTES
    _attr_device_class = SensorDeviceClass.DURATION
    _attr_state_class = SensorStateClass.MEASUREMENT
    keys = ("home_minutes_since_activity", "room_minutes_since_activity")

    @property
    @override
    def native_value(self) -> int | None:
        last = self.coordinator.monitor.activity.last.get(self.room_name)
        if last is None:
            return None
        return max(0, int((dt_util.utcnow() - last).total_seconds() // 60))

    @override
    def fingerprint(self) -> Hashable:
        return (self.available, self.native_value)


def activity_sensors(coordinator: HpollCoordinator, room: Group | None) -> list[ActivitySensor]:
    """The activity sensors of one room, or of the home (room None)."""
    return [
        LastActivitySensor(coordinator, room, "last_activity"),
        ActivityTodaySensor(coordinator, room, "activity_today"),
        MinutesSinceActivitySensor(coordinator, room, "minutes_since_activity"),
    ]


class RelayQueueSensor(RelayEntity, SensorEntity):
    """Reports waiting for the relay; what the queue had to shed, in its attributes."""

    _attr_state_class = SensorStateClass.MEASUREMENT

    key = "relay_queue"

    @property
    @override
    def native_value(self) -> int:
        return len(self.pusher.queue)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        queue = self.pusher.queue
        return {
            "oldest_waiting": queue.oldest_sent_at,
            "reports_compacted": queue.counters["reports_compacted"],
            "activity_dropped": queue.counters["activity_dropped"],
            "reports_rejected": queue.counters["reports_rejected"],
        }

    @override
    def fingerprint(self) -> Hashable:
        return (self.native_value, tuple(self.extra_state_attributes.values()))


class RelayLastPushSensor(RelayEntity, SensorEntity):
    """When the relay last took a report."""

    _attr_device_class = SensorDeviceClass.TIMESTAMP

    key = "relay_last_push"

    @property
    @override
    def native_value(self) -> datetime | None:
        return self.pusher.last_success

    @override
    def fingerprint(self) -> Hashable:
        return self.native_value
