"""Entities of the push to the relay, on the bridge's device: connection, queue depth, last push.

They follow the pusher, not the Hue poll: a relay problem must show while Hue is fine, and the
other way round. Never unavailable: the state IS what the user needs to see.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any, override

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorStateClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from .coordinator import HpollConfigEntry
from .entity import WritesOnChange, bridge_device_info
from .pusher import RelayPusher

RELAY_KEYS = ("relay_connection", "relay_queue", "relay_last_push")


def remove_relay_entities(hass: HomeAssistant, entry: HpollConfigEntry) -> None:
    """Once the push to a relay is switched off, its entities go instead of lingering."""
    registry = er.async_get(hass)
    wanted = {f"{entry.unique_id}_{key}" for key in RELAY_KEYS}
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        if entity.unique_id in wanted:
            registry.async_remove(entity.entity_id)


class RelayEntity(WritesOnChange):
    """Written when the pusher reports a change, and only if what it shows changed."""

    _attr_should_poll = False
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, pusher: RelayPusher, key: str) -> None:
        """One per entry and key."""
        self.pusher = pusher
        self._attr_translation_key = key
        self._attr_unique_id = f"{pusher.coordinator.bridge_id}_{key}"
        self._attr_device_info = bridge_device_info(pusher.coordinator)

    @override
    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(self.pusher.async_add_listener(self.async_write_if_changed))


class RelayConnectionSensor(RelayEntity, BinarySensorEntity):
    """On while reports reach the relay; off (with the reason) when they do not."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY

    def __init__(self, pusher: RelayPusher) -> None:
        """One per entry."""
        super().__init__(pusher, "relay_connection")

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


class RelayQueueSensor(RelayEntity, SensorEntity):
    """Reports waiting for the relay; what the queue had to shed, in its attributes."""

    _attr_state_class = SensorStateClass.MEASUREMENT
    _attr_native_unit_of_measurement = "reports"

    def __init__(self, pusher: RelayPusher) -> None:
        """One per entry."""
        super().__init__(pusher, "relay_queue")

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

    def __init__(self, pusher: RelayPusher) -> None:
        """One per entry."""
        super().__init__(pusher, "relay_last_push")

    @property
    @override
    def native_value(self) -> datetime | None:
        return self.pusher.last_success

    @override
    def fingerprint(self) -> Hashable:
        return self.native_value
