"""Setting up the integration against the simulated Hue cloud."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hpoll.const import DOMAIN
from tests.conftest import RunningCloud
from tests.hpoll.conftest import BRIDGE_ID


async def test_setup_and_unload(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hue_cloud: RunningCloud
) -> None:
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert hue_cloud.sim.requests["GET /route/clip/v2/resource"] == 1
    registry = dr.async_get(hass)
    bridge = registry.async_get_device_by_identifier((DOMAIN, BRIDGE_ID), loaded_entry.entry_id)
    assert bridge is not None
    states = hass.states.async_all()
    assert len(states) > 10
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    assert loaded_entry.state is ConfigEntryState.NOT_LOADED
