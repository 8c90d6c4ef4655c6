"""Entities and devices made from the real captured bridge, and how they follow the bridge."""

from __future__ import annotations

from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar, device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.hpoll import async_remove_config_entry_device
from custom_components.hpoll.const import DOMAIN
from tests.conftest import RunningCloud
from tests.hpoll.conftest import BRIDGE_ID
from tests.hpoll.helpers import poll

FULL_SENSOR = "fb657eb4-38ba-fd3c-7535-d56f4350699f"
ROOM_1 = "2dc387a1-b021-19b8-bfbd-0b4503d402c3"
DIMMER_BUTTON = "0a9acc8f-a8ab-af2e-373b-dc6040de3bd5"


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("platform", [Platform.BINARY_SENSOR, Platform.EVENT, Platform.SENSOR])
async def test_entities_snapshot(
    hass: HomeAssistant,
    credentials: None,
    config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
    freezer: FrozenDateTimeFactory,
) -> None:
    # Timestamps and "last activity" depend on now: fix it (the capture froze a sensor on).
    freezer.move_to("2026-07-28 06:00:30+00:00")
    config_entry.add_to_hass(hass)
    with patch("custom_components.hpoll.PLATFORMS", [platform]):
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
    await snapshot_platform(hass, entity_registry, snapshot, config_entry.entry_id)


async def test_devices_snapshot(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    devices = dr.async_entries_for_config_entry(device_registry, loaded_entry.entry_id)
    bridge = device_registry.async_get_device_by_identifier(
        (DOMAIN, BRIDGE_ID), loaded_entry.entry_id
    )
    assert bridge is not None
    assert all(d.via_device_id == bridge.id for d in devices if d.id != bridge.id)
    assert sorted(devices, key=lambda d: d.name or "") == snapshot


async def test_new_devices_appear_and_removed_ones_go(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    world = hue_cloud.sim.world
    new_id = world.add_device_like(FULL_SENSOR, "Hallway sensor", room_id=ROOM_1)
    await poll(hass, freezer)
    device = device_registry.async_get_device_by_identifier((DOMAIN, new_id), loaded_entry.entry_id)
    assert device is not None
    area = ar.async_get(hass).async_get_area(device.area_id or "")
    assert area is not None
    assert area.name == "Room 1"
    assert hass.states.get("sensor.room_1_hallway_sensor_battery") is not None

    # While the bridge still has it, a device cannot be removed by hand; nor the bridge, ever.
    assert not await async_remove_config_entry_device(hass, loaded_entry, device)
    bridge = device_registry.async_get_device_by_identifier(
        (DOMAIN, BRIDGE_ID), loaded_entry.entry_id
    )
    assert bridge is not None
    assert not await async_remove_config_entry_device(hass, loaded_entry, bridge)

    world.remove_device(new_id)
    await poll(hass, freezer)
    assert (
        device_registry.async_get_device_by_identifier((DOMAIN, new_id), loaded_entry.entry_id)
        is None
    )
    assert hass.states.get("sensor.room_1_hallway_sensor_battery") is None
    assert await async_remove_config_entry_device(hass, loaded_entry, device)


async def test_button_press_fires_an_event(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
) -> None:
    entity_id = entity_registry.async_get_entity_id(
        "event", DOMAIN, f"c59ce269-4b38-b432-f6c4-ca9181865666_button_{DIMMER_BUTTON}"
    )
    assert entity_id is not None
    before = hass.states.get(entity_id)
    assert before is not None
    await poll(hass, freezer)
    assert hass.states.get(entity_id) == before  # nothing pressed, nothing fired
    hue_cloud.sim.world.press_button(DIMMER_BUTTON, "long_press")
    await poll(hass, freezer)
    after = hass.states.get(entity_id)
    assert after is not None
    assert after.attributes["event_type"] == "long_press"
    assert after.state != before.state


async def test_rotary_turn_fires_an_event(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    rotary = hue_cloud.sim.world.of_type("relative_rotary")[0]
    rotary["relative_rotary"]["rotary_report"] = {
        "action": "repeat",
        "rotation": {"direction": "counter_clock_wise", "duration": 400, "steps": 30},
        "updated": "2026-07-28T06:00:00.000Z",
    }
    await poll(hass, freezer)
    fired = [
        state
        for state in hass.states.async_all("event")
        if state.attributes.get("event_type") == "counter_clock_wise"
    ]
    assert len(fired) == 1
    assert fired[0].attributes["steps"] == 30
    assert fired[0].attributes["action"] == "repeat"
