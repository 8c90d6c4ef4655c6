"""The config flow, end to end through HA's OAuth callback and the simulated Hue cloud."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from aiohttp import ClientSession
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.hpoll.const import (
    CONF_APP_KEY,
    CONF_BRIDGE_ID,
    CONF_ENTITY_GROUPS,
    DOMAIN,
)
from tests.conftest import APP_KEY, CLIENT_ID, RunningCloud
from tests.hpoll.conftest import BRIDGE_ID

pytestmark = pytest.mark.usefixtures("credentials", "current_request_with_host")

REDIRECT = "https://example.com/auth/external/callback"


async def _sign_in(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    result: dict[str, Any],
) -> dict[str, Any]:
    """Follow the authorize URL to the simulator, then HA's callback, like a browser would."""
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    url = URL(result["url"])
    assert url.query["client_id"] == CLIENT_ID
    assert url.query["redirect_uri"] == REDIRECT
    async with (
        ClientSession() as browser,
        browser.get(url, allow_redirects=False) as response,
    ):
        assert response.status == 302
        callback = URL(response.headers["Location"])
    assert str(callback.with_query(None)) == REDIRECT
    client = await hass_client_no_auth()
    response = await client.get(f"{callback.path}?{callback.query_string}")
    assert response.status == 200
    return dict(await hass.config_entries.flow.async_configure(result["flow_id"]))


async def _start(hass: HomeAssistant) -> dict[str, Any]:
    return dict(await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER}))


async def test_full_flow_links_the_bridge(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, cloud_urls: RunningCloud
) -> None:
    result = await _sign_in(hass, hass_client_no_auth, await _start(hass))
    # The token request authenticated with HTTP Basic: the simulator refuses anything else.
    assert cloud_urls.sim.oauth.token_requests == [CLIENT_ID]
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "link"
    assert result["description_placeholders"] == {"bridge": "Hue Bridge"}

    # First try: the press does not reach the bridge; the user sees why and retries.
    cloud_urls.sim.link_button_works = False
    result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "link_failed"}

    cloud_urls.sim.link_button_works = True
    with patch("custom_components.hpoll.async_setup_entry", return_value=True) as setup:
        result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Hue Bridge"
    entry = result["result"]
    assert entry.unique_id == BRIDGE_ID
    assert entry.data[CONF_BRIDGE_ID] == BRIDGE_ID
    assert entry.data[CONF_APP_KEY] in cloud_urls.sim.app_keys
    assert entry.data["token"]["refresh_token"]
    assert len(setup.mock_calls) == 1


@pytest.mark.parametrize(
    ("mode", "error"),
    [("offline", "bridge_offline"), ("down", "cannot_connect")],
)
async def test_link_step_errors(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    cloud_urls: RunningCloud,
    mode: str,
    error: str,
) -> None:
    result = await _sign_in(hass, hass_client_no_auth, await _start(hass))
    now = cloud_urls.clock.now()
    if mode == "offline":
        cloud_urls.sim.world.bridge_offline(now, now.replace(year=now.year + 1))
    else:
        cloud_urls.sim.oauth.access_token_seconds = 0
        cloud_urls.sim.oauth.expire_access_tokens()
    result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))
    assert result["errors"] == {"base": error}


async def test_second_flow_for_same_bridge_aborts(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    config_entry: MockConfigEntry,
) -> None:
    config_entry.add_to_hass(hass)
    result = await _sign_in(hass, hass_client_no_auth, await _start(hass))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("offline", "bridge_offline"),
        ("expired", "invalid_auth"),
        ("gone", "cannot_connect"),
    ],
)
async def test_bridge_lookup_failures_abort(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    cloud_urls: RunningCloud,
    breakage: str,
    reason: str,
) -> None:
    result = await _start(hass)
    world = cloud_urls.sim.world
    now = cloud_urls.clock.now()
    if breakage == "offline":
        world.bridge_offline(now, now.replace(year=now.year + 1))
    elif breakage == "expired":
        cloud_urls.sim.oauth.access_token_seconds = 0
    else:
        world.bridge_offline(now, now.replace(year=now.year + 1), status=502)
    result = await _sign_in(hass, hass_client_no_auth, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason


async def _start_reauth(
    hass: HomeAssistant, entry: MockConfigEntry, step: str = "reauth_confirm"
) -> dict[str, Any]:
    result = dict(await entry.start_reauth_flow(hass))
    assert result["step_id"] == step
    assert result["description_placeholders"]["bridge"] == "Hue Bridge"
    return dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))


async def test_reauth_keeps_the_key_and_updates_tokens(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
) -> None:
    old_token = loaded_entry.data["token"]["access_token"]
    result = await _sign_in(hass, hass_client_no_auth, await _start_reauth(hass, loaded_entry))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert loaded_entry.data["token"]["access_token"] != old_token
    assert loaded_entry.data[CONF_APP_KEY] == APP_KEY
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED


async def test_reauth_relinks_when_the_bridge_forgot_the_key(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    cloud_urls: RunningCloud,
) -> None:
    cloud_urls.sim.app_keys.clear()
    # The sign-in still works: the user is told the key is gone, not that it "expired".
    started = await _start_reauth(hass, loaded_entry, "reauth_app_key")
    result = await _sign_in(hass, hass_client_no_auth, started)
    assert result["step_id"] == "link"
    result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))
    assert result["reason"] == "reauth_successful"
    assert loaded_entry.data[CONF_APP_KEY] in cloud_urls.sim.app_keys
    assert loaded_entry.data[CONF_APP_KEY] != APP_KEY


async def test_reauth_tolerates_other_poll_failures(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    cloud_urls: RunningCloud,
) -> None:
    result = await _start_reauth(hass, loaded_entry)
    cloud_urls.sim.world.rate_limit(1)
    result = await _sign_in(hass, hass_client_no_auth, result)
    assert result["reason"] == "reauth_successful"


async def test_reauth_with_another_bridge_aborts(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    cloud_urls: RunningCloud,
    credentials: None,
) -> None:
    other = MockConfigEntry(
        domain=DOMAIN,
        title="Hue Bridge",
        unique_id="0017880000000000",
        data={"auth_implementation": DOMAIN, "token": {}, CONF_APP_KEY: APP_KEY},
    )
    other.add_to_hass(hass)
    result = await _sign_in(hass, hass_client_no_auth, await _start_reauth(hass, other))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_bridge"


async def test_reconfigure_creates_a_new_key(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, cloud_urls: RunningCloud
) -> None:
    result = dict(await loaded_entry.start_reconfigure_flow(hass))
    assert result["step_id"] == "reconfigure"
    cloud_urls.sim.link_button_works = False
    result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))
    assert result["errors"] == {"base": "link_failed"}
    cloud_urls.sim.link_button_works = True
    result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert loaded_entry.data[CONF_APP_KEY] != APP_KEY
    assert loaded_entry.data[CONF_APP_KEY] in cloud_urls.sim.app_keys
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED


@pytest.mark.parametrize(
    ("breakage", "outcome"),
    [
        ("offline", {"errors": {"base": "bridge_offline"}}),
        ("cloud_error", {"errors": {"base": "cannot_connect"}}),
        ("revoked", {"reason": "reauth_required"}),
        ("other_bridge", {"reason": "wrong_bridge"}),
    ],
)
async def test_reconfigure_failures(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    cloud_urls: RunningCloud,
    breakage: str,
    outcome: dict[str, Any],
) -> None:
    result = dict(await loaded_entry.start_reconfigure_flow(hass))
    now = cloud_urls.clock.now()
    world = cloud_urls.sim.world
    if breakage == "offline":
        world.bridge_offline(now, now.replace(year=now.year + 1))
    elif breakage == "cloud_error":
        world.bridge_offline(now, now.replace(year=now.year + 1), status=500)
    elif breakage == "revoked":
        cloud_urls.sim.oauth.revoke_all()
    else:
        hass.config_entries.async_update_entry(loaded_entry, unique_id="0017880000000000")
    result = dict(await hass.config_entries.flow.async_configure(result["flow_id"], {}))
    for key, value in outcome.items():
        assert result[key] == value


async def test_options_flow(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = dict(await hass.config_entries.options.async_init(loaded_entry.entry_id))
    assert result["type"] is FlowResultType.FORM
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"],
            {CONF_ENTITY_GROUPS: ["battery", "motion"]},
        )
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert loaded_entry.options == {
        CONF_ENTITY_GROUPS: ["battery", "motion"],
        "inactivity_hours": 3.0,
        "quiet_start": "22:00:00",
        "quiet_end": "07:00:00",
    }
    # Only the chosen groups (plus the bridge's own connection sensor) remain.
    assert hass.states.get("sensor.device_2_temperature") is None
    assert hass.states.get("sensor.device_2_battery") is not None
    # Their registry entries go too, also those of entities disabled by default (never added).
    registry = er.async_get(hass)
    keys = {
        entry.unique_id.rpartition("_")[2]
        for entry in er.async_entries_for_config_entry(registry, loaded_entry.entry_id)
    }
    assert not keys & {"temperature", "illuminance", "status", "activity", "inactive"}
    assert {"battery", "low", "motion", "connection"} <= keys


async def test_polling_is_not_an_option(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    """appropriate-polling: the interval is automatic (see test_coordinator), never asked."""
    result = dict(await hass.config_entries.options.async_init(loaded_entry.entry_id))
    fields = {str(key) for key in result["data_schema"].schema}
    assert not {"scan_interval", "poll_interval", "update_interval"} & fields


def test_devicetype_fits_clip_v1_limits() -> None:
    from custom_components.hpoll.config_flow import _devicetype

    assert _devicetype("Mum's flat — Amsterdam, 3rd floor") == "hpoll#Mums flat Amsterdam"
    assert _devicetype("???") == "hpoll#homeassistant"
