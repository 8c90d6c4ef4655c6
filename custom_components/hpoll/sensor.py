"""Sensors: battery level, Zigbee status, temperature, light level, last motion."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import LIGHT_LUX, PERCENTAGE, EntityCategory, UnitOfTemperature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .activity_sensor import add_activity_entities
from .const import GROUP_BATTERY, GROUP_CONNECTIVITY, GROUP_ENVIRONMENT, GROUP_MOTION
from .coordinator import HpollConfigEntry
from .entity import HpollDescribedEntity, add_described_entities
from .hue import ConnectivityStatus, Device
from .relay_entities import RelayLastPushSensor, RelayQueueSensor

PARALLEL_UPDATES = 0

type SensorValue = str | int | float | datetime | None


@dataclass(frozen=True, kw_only=True)
class HpollSensorDescription(SensorEntityDescription):
    """A sensor of a Hue device: which group it belongs to, when it exists, what it reads."""

    group: str
    exists_fn: Callable[[Device], bool]
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
    """Sensors for every device that has the matching service, now and when paired later."""
    add_described_entities(entry, async_add_entities, HpollSensor, SENSORS)
    add_activity_entities(entry, async_add_entities)
    if (pusher := entry.runtime_data.pusher) is not None:
        async_add_entities([RelayQueueSensor(pusher), RelayLastPushSensor(pusher)])


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
