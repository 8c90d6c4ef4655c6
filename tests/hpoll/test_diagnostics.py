"""Diagnostics: useful for debugging, with no secret and nothing identifying left in."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.json import JSONEncoder
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.hpoll.const import DOMAIN
from custom_components.hpoll.diagnostics import (
    async_get_config_entry_diagnostics,
    async_get_device_diagnostics,
)
from tests.conftest import APP_KEY
from tests.hpoll.conftest import BRIDGE_ID

FULL_SENSOR = "fb657eb4-38ba-fd3c-7535-d56f4350699f"


def _secrets(entry: MockConfigEntry) -> list[str]:
    token = entry.data["token"]
    return [token["access_token"], token["refresh_token"], APP_KEY, BRIDGE_ID, "00:11:22"]


async def test_entry_diagnostics(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, snapshot: SnapshotAssertion
) -> None:
    result = await async_get_config_entry_diagnostics(hass, loaded_entry)
    text = json.dumps(result, cls=JSONEncoder)
    for secret in _secrets(loaded_entry):
        assert secret not in text
    assert "Device 2" not in text  # names can identify a home's occupants
    assert result["counts"]["devices"] == 46
    assert result["polling"]["last_update_success"] is True
    assert result == snapshot(exclude=lambda prop, path: prop in ("expires_at", "last_success"))


async def test_device_diagnostics(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, FULL_SENSOR), loaded_entry.entry_id
    )
    assert device is not None
    result = await async_get_device_diagnostics(hass, loaded_entry, device)
    text = json.dumps(result, cls=JSONEncoder)
    for secret in _secrets(loaded_entry):
        assert secret not in text
    assert result["device"]["id"] == FULL_SENSOR
    assert result["device"]["power"]["battery_level"] == 51
    bridge = device_registry.async_get_device_by_identifier(
        (DOMAIN, BRIDGE_ID), loaded_entry.entry_id
    )
    assert bridge is not None
    assert (await async_get_device_diagnostics(hass, loaded_entry, bridge))["device"] is None
