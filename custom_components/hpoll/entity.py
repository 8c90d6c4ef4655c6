"""Base entities and their description, device info, and adding entities as the bridge grows.

Every hpoll entity belongs to an options group (``entity_groups``) or to the relay; entities of a
group the user switched off are not added and their registry entries are removed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import override

from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import (
    AddConfigEntryEntitiesCallback,
    async_get_current_platform,
)
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_ENTITY_GROUPS, DOMAIN, ENTITY_GROUPS, GROUP_RELAY
from .coordinator import HpollConfigEntry, HpollCoordinator, room_identifier
from .hue import Device, Group, Snapshot
from .pusher import RelayPusher

MANUFACTURER = "Signify"


@dataclass(frozen=True, kw_only=True)
class HpollEntityDescription(EntityDescription):
    """What an hpoll entity's description adds to HA's: its options group, when it applies."""

    #: The options group (``entity_groups``, or the relay) the entity belongs to.
    group: str
    #: Whether a Hue device has what the entity reads (device entities only).
    exists_fn: Callable[[Device], bool] = lambda _device: True


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
    snapshot = coordinator.data
    # Its Hue room is its area; a device outside any room (a child of the bridge's home, as on
    # many bridges) takes the zone holding it.
    area = snapshot.rooms.get(device.room_id or "") or snapshot.zones.get(device.zone_id or "")
    info = DeviceInfo(
        identifiers={(DOMAIN, device.id)},
        name=device.name,
        manufacturer=device.manufacturer or MANUFACTURER,
        model=device.product_name,
        model_id=device.model_id,
        sw_version=device.software_version,
        via_device_id=coordinator.bridge_device_id,
    )
    if area is not None:
        info["suggested_area"] = area.name
    return info


def room_device_info(coordinator: HpollCoordinator, room: Group) -> DeviceInfo:
    """The HA device of a Hue room: where its activity entities live.

    Named like the room and therefore given no area: entity ids are prefixed with the area's
    name, so a "Kitchen" device in the "Kitchen" area would make ``sensor.kitchen_kitchen_...``.
    """
    return DeviceInfo(
        identifiers={(DOMAIN, room_identifier(coordinator.bridge_id, room.id))},
        name=room.name,
        manufacturer=MANUFACTURER,
        model="Hue room",
        entry_type=DeviceEntryType.SERVICE,
        via_device_id=coordinator.bridge_device_id,
    )


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


class HpollBaseEntity(Entity):
    """Every hpoll entity: its group, and its state written only when what it shows changed."""

    _attr_has_entity_name = True
    #: The options group it belongs to; None: always there (the bridge's cloud connection).
    options_group: str | None = None
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


class HpollEntity(CoordinatorEntity[HpollCoordinator], HpollBaseEntity):
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
    """A device entity whose behaviour comes from an HpollEntityDescription."""

    entity_description: HpollEntityDescription

    def __init__(
        self, coordinator: HpollCoordinator, device: Device, description: HpollEntityDescription
    ) -> None:
        """Bind the description to the device."""
        super().__init__(coordinator, device, description.key)
        self.entity_description = description
        self.options_group = description.group


class RelayEntity(HpollBaseEntity):
    """An entity of the push to the relay, on the bridge's device.

    It follows the pusher, not the Hue poll: a relay problem must show while Hue is fine, and the
    other way round. Never unavailable: the state IS what the user needs to see. Written when the
    pusher reports a change, and only if what it shows changed.
    """

    _attr_should_poll = False
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    options_group = GROUP_RELAY
    #: Entity key (translation key, part of the unique id).
    key: str

    def __init__(self, pusher: RelayPusher) -> None:
        """One per entry."""
        self.pusher = pusher
        self._attr_translation_key = self.key
        self._attr_unique_id = relay_unique_id(pusher.coordinator, self.key)
        self._attr_device_info = bridge_device_info(pusher.coordinator)

    @override
    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(self.pusher.async_add_listener(self.async_write_if_changed))


def relay_unique_id(coordinator: HpollCoordinator, key: str) -> str:
    """Unique id of a relay entity (also to forget it once the relay is switched off)."""
    return f"{coordinator.bridge_id}_{key}"


def enabled_groups(entry: HpollConfigEntry) -> frozenset[str]:
    """The entity groups the user wants (options), all by default."""
    return frozenset(entry.options.get(CONF_ENTITY_GROUPS, ENTITY_GROUPS))


def wanted_groups(entry: HpollConfigEntry) -> frozenset[str]:
    """The groups whose entities exist: those enabled, and the relay's while it is set up."""
    relay = {GROUP_RELAY} if entry.runtime_data.pusher is not None else set()
    return enabled_groups(entry) | relay


def forget_entities(hass: HomeAssistant, platform: str, unique_ids: Iterable[str]) -> None:
    """Remove these entities of the platform from the registry (they no longer apply)."""
    registry = er.async_get(hass)
    for unique_id in unique_ids:
        if entity_id := registry.async_get_entity_id(platform, DOMAIN, unique_id):
            registry.async_remove(entity_id)


def add_entities_as_they_appear[T](
    entry: HpollConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    items: Callable[[Snapshot], Mapping[str, T]],
    build: Callable[[HpollCoordinator, T], Iterable[HpollBaseEntity]],
) -> None:
    """Entities for the items (devices, rooms) of the first poll and for every one that appears
    later; those of groups switched off are not added, and leave the registry.

    Called from a platform's ``async_setup_entry``. An item that goes and comes back gets its
    entities again (they left with its device).
    """
    coordinator = entry.runtime_data.coordinator
    platform = async_get_current_platform().domain
    groups = wanted_groups(entry)
    known: set[str] = set()

    @callback
    def add_new() -> None:
        if not coordinator.last_update_success:
            return
        current = items(coordinator.data)
        known.intersection_update(current)
        new = current.keys() - known
        if not new:
            return
        known.update(new)
        wanted: list[HpollBaseEntity] = []
        unwanted: list[str] = []
        for key in new:
            for entity in build(coordinator, current[key]):
                if entity.options_group is None or entity.options_group in groups:
                    wanted.append(entity)
                elif entity.unique_id is not None:
                    unwanted.append(entity.unique_id)
        forget_entities(coordinator.hass, platform, unwanted)
        if wanted:
            async_add_entities(wanted)

    add_new()
    entry.async_on_unload(coordinator.async_add_listener(add_new))


def bridge_items(snapshot: Snapshot) -> Mapping[str, Snapshot]:
    """The bridge itself as the one item of add_entities_as_they_appear (home-level entities)."""
    return {"bridge": snapshot}


def add_described_entities[D: HpollEntityDescription](
    entry: HpollConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entity_class: Callable[[HpollCoordinator, Device, D], HpollBaseEntity],
    descriptions: Iterable[D],
) -> None:
    """One entity per (device, description) that applies, now and for devices paired later."""
    descriptions = tuple(descriptions)

    def build(coordinator: HpollCoordinator, device: Device) -> list[HpollBaseEntity]:
        return [entity_class(coordinator, device, d) for d in descriptions if d.exists_fn(device)]

    add_entities_as_they_appear(entry, async_add_entities, lambda s: s.devices, build)
