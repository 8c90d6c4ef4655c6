"""Activity entities per Hue room and for the whole home: last activity and today's count."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from datetime import datetime
from typing import override

from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorStateClass
from homeassistant.const import UnitOfTime
from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .activity.log import HOME
from .const import DOMAIN, GROUP_ACTIVITY
from .coordinator import HpollConfigEntry, HpollCoordinator, room_identifier
from .entity import HpollEntity, bridge_device_info, enabled_groups
from .hue import Group, Snapshot


def activity_rooms(snapshot: Snapshot) -> dict[str, Group]:
    """Rooms with something that reports activity (motion, contact, buttons, dials)."""
    rooms: dict[str, Group] = {}
    for device in snapshot.devices.values():
        room = snapshot.rooms.get(device.room_id or "")
        if room is not None and (
            device.motion or device.contact or device.buttons or device.rotaries
        ):
            rooms[room.id] = room
    return rooms


def room_device_info(coordinator: HpollCoordinator, room: Group) -> DeviceInfo:
    """The HA device of a Hue room: where its activity entities live."""
    return DeviceInfo(
        identifiers={(DOMAIN, room_identifier(coordinator.bridge_id, room.id))},
        name=room.name,
        manufacturer="Signify",
        model="Hue room",
        entry_type=DeviceEntryType.SERVICE,
        suggested_area=room.name,
        via_device_id=coordinator.bridge_device_id,
    )


class ActivitySensor(HpollEntity, SensorEntity):
    """Base: one room (or the home, room_id None) of the coordinator's ActivityLog."""

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
    _attr_native_unit_of_measurement = "events"
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


def add_entities_as_rooms_appear(
    entry: HpollConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[HpollCoordinator, Group], Iterable[Entity]],
) -> None:
    """Entities for every room that can see activity, now and when rooms appear later."""
    coordinator = entry.runtime_data.coordinator
    known: set[str] = set()

    @callback
    def add_rooms() -> None:
        if not coordinator.last_update_success:
            return
        rooms = activity_rooms(coordinator.data)
        new = [room for room_id, room in rooms.items() if room_id not in known]
        known.update(rooms)
        entities = [entity for room in new for entity in build(coordinator, room)]
        if entities:
            async_add_entities(entities)

    add_rooms()
    entry.async_on_unload(coordinator.async_add_listener(add_rooms))


def add_activity_entities(
    entry: HpollConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Home-level entities now; room-level ones for every room that can see activity."""
    if GROUP_ACTIVITY not in enabled_groups(entry):
        return

    def build(coordinator: HpollCoordinator, room: Group | None) -> list[ActivitySensor]:
        return [
            LastActivitySensor(coordinator, room, "last_activity"),
            ActivityTodaySensor(coordinator, room, "activity_today"),
            MinutesSinceActivitySensor(coordinator, room, "minutes_since_activity"),
        ]

    async_add_entities(build(entry.runtime_data.coordinator, None))
    add_entities_as_rooms_appear(entry, async_add_entities, build)
