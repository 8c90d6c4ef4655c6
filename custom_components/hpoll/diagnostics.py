"""Diagnostics: what the bridge reported, how polling and the push to the relay go; secrets and
identities removed."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util

from .const import (
    CONF_APP_KEY,
    CONF_BRIDGE_ID,
    CONF_RELAY_HOME_ID,
    CONF_RELAY_TOKEN,
    CONF_RELAY_URL,
    DOMAIN,
)
from .coordinator import HpollConfigEntry, HpollCoordinator
from .hue import Device

TO_REDACT = {
    "access_token",
    "refresh_token",
    CONF_APP_KEY,
    CONF_BRIDGE_ID,
    CONF_RELAY_TOKEN,
    CONF_RELAY_URL,
    CONF_RELAY_HOME_ID,
    "mac_address",
    "name",
    "title",
    "unique_id",
}


def _device(device: Device) -> dict[str, Any]:
    return asdict(device)


def _polling(coordinator: HpollCoordinator) -> dict[str, Any]:
    return {
        "last_update_success": coordinator.last_update_success,
        "poll_interval_seconds": coordinator.poll_interval,
        "problem": coordinator.problem,
        "offline_since": coordinator.offline_since,
        "last_success": coordinator.last_success,
        "last_exception": repr(coordinator.last_exception) if coordinator.last_exception else None,
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HpollConfigEntry
) -> dict[str, Any]:
    """The whole entry: settings, polling state, and every parsed device."""
    coordinator = entry.runtime_data.coordinator
    snapshot = coordinator.data
    return async_redact_data(
        {
            "entry": {
                "data": dict(entry.data),
                "options": dict(entry.options),
                "title": entry.title,
                "unique_id": entry.unique_id,
            },
            "polling": _polling(coordinator),
            "relay": pusher.stats() if (pusher := entry.runtime_data.pusher) else None,
            "bridge": asdict(snapshot.bridge) if snapshot.bridge else None,
            "counts": {
                "devices": len(snapshot.devices),
                "rooms": len(snapshot.rooms),
                "zones": len(snapshot.zones),
                "area_motion": len(snapshot.area_motion),
                "skipped_resources": snapshot.skipped,
            },
            # Services whose owner device the bridge did not list (counted in skipped).
            "orphaned_services": [asdict(ref) for ref in snapshot.orphans],
            "stuck_motion_sensors": coordinator.monitor.activity.tracker.stuck(dt_util.utcnow()),
            "devices": [_device(device) for device in snapshot.devices.values()],
        },
        TO_REDACT,
    )


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: HpollConfigEntry, device: dr.DeviceEntry
) -> dict[str, Any]:
    """One device as the bridge last reported it."""
    coordinator = entry.runtime_data.coordinator
    hue_ids = {ident for domain, ident in device.identifiers if domain == DOMAIN}
    found = [_device(d) for d_id, d in coordinator.data.devices.items() if d_id in hue_ids]
    return async_redact_data(
        {"polling": _polling(coordinator), "device": found[0] if found else None}, TO_REDACT
    )
