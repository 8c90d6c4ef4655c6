"""Base entity: device info from the Hue device, and state written only when it changed."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Protocol, override

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import (
    CONF_ENTITY_GROUPS,
    DOMAIN,
    ENTITY_GROUPS,
    GROUP_ACTIVITY,
    GROUP_BATTERY,
    GROUP_CONNECTIVITY,
    GROUP_CONTROLS,
    GROUP_ENVIRONMENT,
    GROUP_MOTION,
    GROUP_SECURITY,
)
from .coordinator import HpollConfigEntry, HpollCoordinator
from .hue import Device

MANUFACTURER = "Signify"


def bridge_device_info(coordinator: HpollCoordinator) -> DeviceInfo:
    """The HA device standing for the bridge (every other device hangs off it)."""
    snapshot = coordinator.data
    bridge_device = (
        snapshot.devices.get(snapshot.bridge.device_id or "") if snapshot.bridge else None
    )
    info = DeviceInfo(
        identifiers={(DOMAIN, coordinator.bridge_id)},
        manufacturer=MANUFACTURER,
        name=coordinator.config_entry.title,
        model="Hue Bridge",
    )
    if bridge_device is not None:
        info["model_id"] = bridge_device.model_id
        info["sw_version"] = bridge_device.software_version
    return info


def device_info(coordinator: HpollCoordinator, device: Device) -> DeviceInfo:
    """The HA device for one Hue device; the bridge's own Hue device is the bridge."""
    bridge = coordinator.data.bridge
    if bridge is not None and bridge.device_id == device.id:
        return bridge_device_info(coordinator)
    room = coordinator.data.rooms.get(device.room_id) if device.room_id else None
    info = DeviceInfo(
        identifiers={(DOMAIN, device.id)},
        name=device.name,
        manufacturer=device.manufacturer or MANUFACTURER,
        model=device.product_name,
        model_id=device.model_id,
        sw_version=device.software_version,
        via_device_id=coordinator.bridge_device_id,
    )
    if room is not None:
        info["suggested_area"] = room.name
    return info


class WritesOnChange(Entity):
    """Writes its state only when what it shows has changed (``fingerprint``)."""

    _attr_has_entity_name = True
    _last_written: Hashable = None

    @callback
    def async_write_if_changed(self) -> None:
        """Write the state if its fingerprint moved since the last write."""
        # HA would drop an identical state anyway, but only after building it; a bridge with
        # hundreds of entities polled every minute should not pay for that.
        shown = self.fingerprint()
        if shown == self._last_written:
            return
        self._last_written = shown
        self.async_write_ha_state()

    @override
    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self._last_written = self.fingerprint()

    def fingerprint(self) -> Hashable:
        """Everything the state and attributes are made of."""
        return (self.available,)


class HpollEntity(CoordinatorEntity[HpollCoordinator], WritesOnChange):
    """Reads coordinator.data; written on coordinator updates, only when it changed."""

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        self.async_write_if_changed()


class HpollDeviceEntity(HpollEntity):
    """An entity of one Hue device."""

    def __init__(self, coordinator: HpollCoordinator, device: Device, key: str) -> None:
        """Unique id: the Hue device id (a UUID, stable across renames) and the entity key."""
        super().__init__(coordinator)
        self.device_id = device.id
        self._attr_unique_id = f"{device.id}_{key}"
        self._attr_device_info = device_info(coordinator, device)

    @property
    def device(self) -> Device | None:
        """The Hue device as of the latest poll (None once removed)."""
        return self.coordinator.data.devices.get(self.device_id)

    @property
    @override
    def available(self) -> bool:
        return super().available and self.device is not None


class HpollDescribedEntity(HpollDeviceEntity):
    """A device entity whose behaviour comes from an EntityDescription (keyed, with value_fn)."""

    def __init__(
        self, coordinator: HpollCoordinator, device: Device, description: EntityDescription
    ) -> None:
        """Bind the description to the device."""
        super().__init__(coordinator, device, description.key)
        self.entity_description = description


def enabled_groups(entry: HpollConfigEntry) -> frozenset[str]:
    """The entity groups the user wants (options), all by default."""
    return frozenset(entry.options.get(CONF_ENTITY_GROUPS, ENTITY_GROUPS))


#: Entity key (or its prefix before "_<service id>") -> the options group it belongs to.
KEY_GROUPS = {
    "battery": GROUP_BATTERY,
    "battery_low": GROUP_BATTERY,
    "zigbee_status": GROUP_CONNECTIVITY,
    "zigbee_connectivity": GROUP_CONNECTIVITY,
    "motion": GROUP_MOTION,
    "last_motion": GROUP_MOTION,
    "temperature": GROUP_ENVIRONMENT,
    "illuminance": GROUP_ENVIRONMENT,
    "button": GROUP_CONTROLS,
    "rotary": GROUP_CONTROLS,
    "contact": GROUP_SECURITY,
    "tamper": GROUP_SECURITY,
    "room": GROUP_ACTIVITY,
    "home": GROUP_ACTIVITY,
}


def remove_entities_of_disabled_groups(hass: HomeAssistant, entry: HpollConfigEntry) -> None:
    """Entities of groups the user switched off go away instead of lingering unavailable."""
    groups = enabled_groups(entry)
    registry = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        key = entity.unique_id.partition("_")[2]
        group = KEY_GROUPS.get(key) or KEY_GROUPS.get(key.partition("_")[0])
        if group is not None and group not in groups:
            registry.async_remove(entity.entity_id)


def add_entities_as_devices_appear(
    entry: HpollConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[HpollCoordinator, Device], Iterable[HpollDeviceEntity]],
) -> None:
    """Add entities for the devices of the first poll and for every device paired later."""
    coordinator = entry.runtime_data.coordinator
    known: set[str] = set()

    @callback
    def add_new_devices() -> None:
        if not coordinator.last_update_success:
            return
        current = coordinator.data.devices.keys()
        known.intersection_update(current)
        new = current - known
        if not new:
            return
        known.update(new)
        entities = [
            entity
            for device_id in new
            for entity in build(coordinator, coordinator.data.devices[device_id])
        ]
        if entities:
            async_add_entities(entities)

    add_new_devices()
    entry.async_on_unload(coordinator.async_add_listener(add_new_devices))


class DeviceDescription(Protocol):
    """What a device entity's description adds to HA's: its options group, when it applies."""

    @property
    def key(self) -> str:
        """Entity key (part of the unique id)."""

    @property
    def group(self) -> str:
        """The options group (entity_groups) the entity belongs to."""

    @property
    def exists_fn(self) -> Callable[[Device], bool]:
        """Whether a device has what the entity reads."""


def add_described_entities[D: DeviceDescription](
    entry: HpollConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entity_class: Callable[[HpollCoordinator, Device, D], HpollDeviceEntity],
    descriptions: Iterable[D],
) -> None:
    """One entity per (device, description) that applies and is in an enabled group."""
    groups = enabled_groups(entry)
    wanted = [d for d in descriptions if d.group in groups]

    def build(coordinator: HpollCoordinator, device: Device) -> list[HpollDeviceEntity]:
        return [entity_class(coordinator, device, d) for d in wanted if d.exists_fn(device)]

    add_entities_as_devices_appear(entry, async_add_entities, build)
