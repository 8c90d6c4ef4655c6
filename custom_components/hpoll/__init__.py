"""hpoll: watch over a Philips Hue home through the Hue Remote API."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.config_entry_oauth2_flow import (
    OAuth2Session,
    async_get_config_entry_implementation,
)
from homeassistant.helpers.typing import ConfigType

from . import const
from .const import (
    CONF_APP_KEY,
    CONF_PUSH_INTERVAL,
    CONF_RELAY_HOME_ID,
    CONF_RELAY_TOKEN,
    CONF_RELAY_URL,
    DEFAULT_PUSH_INTERVAL,
    DOMAIN,
)
from .coordinator import HpollConfigEntry, HpollCoordinator, HpollData
from .entity import bridge_device_info
from .hue import HueRemoteClient
from .pusher import RelayPusher, token_issue_id
from .relay_client import RelayClient

PLATFORMS = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Nothing to set up outside config entries."""
    return True


async def async_setup_entry(hass: HomeAssistant, entry: HpollConfigEntry) -> bool:
    """Connect to the bridge through the Hue cloud and start polling."""
    implementation = await async_get_config_entry_implementation(hass, entry)
    oauth = OAuth2Session(hass, entry, implementation)

    async def access_token() -> str:
        # Refreshes when due; OAuth2Session stores the rotated refresh token on the entry.
        await oauth.async_ensure_token_valid()
        return str(oauth.token["access_token"])

    async def refreshed_access_token() -> str:
        # The cloud ended the token early: refresh now, whatever its stated expiry.
        token = await implementation.async_refresh_token(oauth.token)
        hass.config_entries.async_update_entry(entry, data={**entry.data, "token": token})
        return str(token["access_token"])

    client = HueRemoteClient(
        async_get_clientsession(hass),
        access_token,
        entry.data[CONF_APP_KEY],
        base_url=const.API_BASE_URL,
        token_refresher=refreshed_access_token,
    )
    coordinator = HpollCoordinator(hass, entry, client)
    await coordinator.monitor.async_load()
    await coordinator.async_config_entry_first_refresh()
    # The bridge goes into the registry first so every other device can name it as its hub.
    bridge = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **bridge_device_info(coordinator)
    )
    coordinator.bridge_device_id = bridge.id
    pusher = _relay_pusher(hass, entry, coordinator)
    entry.runtime_data = HpollData(client=client, coordinator=coordinator, pusher=pusher)
    if pusher is not None:
        await pusher.async_start()

        async def queue_what_is_left(_event: Event) -> None:
            # HA does not unload entries when it stops; this keeps the last minute's activity.
            await pusher.async_stop()

        entry.async_on_unload(
            hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, queue_what_is_left)
        )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


def _relay_pusher(
    hass: HomeAssistant, entry: HpollConfigEntry, coordinator: HpollCoordinator
) -> RelayPusher | None:
    """The relay pusher, if the options name a relay (checked live when they were saved)."""
    options = entry.options
    if not options.get(CONF_RELAY_URL):
        ir.async_delete_issue(hass, DOMAIN, token_issue_id(entry.entry_id))
        return None
    client = RelayClient(
        async_get_clientsession(hass), options[CONF_RELAY_URL], options[CONF_RELAY_TOKEN]
    )
    return RelayPusher(
        hass,
        entry,
        coordinator,
        client,
        home_id=options[CONF_RELAY_HOME_ID],
        interval=timedelta(seconds=options.get(CONF_PUSH_INTERVAL, DEFAULT_PUSH_INTERVAL)),
    )


async def async_unload_entry(hass: HomeAssistant, entry: HpollConfigEntry) -> bool:
    """Stop polling and pushing; keep what the activity tracker knows and what still waits for
    the relay; remove the entities."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.coordinator.monitor.async_save()
        if (pusher := entry.runtime_data.pusher) is not None:
            await pusher.async_stop()
    return unloaded


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: HpollConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow removing a device by hand once the bridge no longer has it; never the bridge."""
    coordinator = entry.runtime_data.coordinator
    identifiers = {ident for domain, ident in device.identifiers if domain == DOMAIN}
    if coordinator.bridge_id in identifiers:
        return False
    return not identifiers & coordinator.identifiers(coordinator.data)
