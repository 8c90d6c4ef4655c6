"""The relay step of the options flow, checked live against the real relay process."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hpoll.const import (
    CONF_PUSH_INTERVAL,
    CONF_RELAY_ENABLED,
    CONF_RELAY_HOME_ID,
    CONF_RELAY_TOKEN,
    CONF_RELAY_URL,
)
from tests.relay.relay_process import free_port
from tests.relay_server import RelayServer

CONNECTION = "binary_sensor.hue_bridge_relay_connection"


async def open_relay_step(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    """Options, with the push to a relay switched on: the flow id at the relay step."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_RELAY_ENABLED: True}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "relay"
    return str(result["flow_id"])


async def submit(hass: HomeAssistant, flow_id: str, **fields: Any) -> dict[str, Any]:
    return dict(
        await hass.config_entries.options.async_configure(
            flow_id, {CONF_PUSH_INTERVAL: 120} | fields
        )
    )


async def test_relay_step_links_the_home(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    relay: RelayServer,
    relay_home: tuple[str, str],
) -> None:
    home_id, token = relay_home
    flow_id = await open_relay_step(hass, loaded_entry)
    result = await submit(
        hass, flow_id, **{CONF_RELAY_URL: f" {relay.url}/ ", CONF_RELAY_TOKEN: f" {token} "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    options = loaded_entry.options
    assert options[CONF_RELAY_URL] == relay.url
    assert options[CONF_RELAY_TOKEN] == token
    assert options[CONF_RELAY_HOME_ID] == home_id
    assert options[CONF_PUSH_INTERVAL] == 120
    assert options["inactivity_hours"] == 3.0  # the first step's settings are kept
    state = hass.states.get(CONNECTION)
    assert state is not None
    assert state.state == "on"  # the reload started pushing, and the relay took it


@pytest.mark.parametrize(
    ("url", "token", "errors"),
    [
        ("ftp://relay.example", "t", {CONF_RELAY_URL: "invalid_url"}),
        ("https://user:pw@relay.example", "t", {CONF_RELAY_URL: "invalid_url"}),
        ("relay.example", "t", {CONF_RELAY_URL: "invalid_url"}),
        ("RELAY", "", {CONF_RELAY_TOKEN: "token_required"}),
        ("RELAY", "not-a-token", {"base": "invalid_token"}),
        ("NOBODY", "t", {"base": "cannot_connect"}),
        ("RELAY/not-here", "t", {"base": "cannot_connect"}),
    ],
)
async def test_relay_step_errors(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    relay: RelayServer,
    url: str,
    token: str,
    errors: dict[str, str],
) -> None:
    url = url.replace("RELAY", relay.url).replace("NOBODY", f"http://127.0.0.1:{free_port()}")
    flow_id = await open_relay_step(hass, loaded_entry)
    result = await submit(hass, flow_id, **{CONF_RELAY_URL: url, CONF_RELAY_TOKEN: token})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert CONF_RELAY_URL not in loaded_entry.options
    # The form keeps what was typed, except the token.
    fields = {str(key): key for key in result["data_schema"].schema}
    assert fields[CONF_RELAY_URL].description == {"suggested_value": url}
    assert fields[CONF_RELAY_TOKEN].description is None


async def test_cannot_connect_says_why(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, relay: RelayServer
) -> None:
    flow_id = await open_relay_step(hass, loaded_entry)
    result = await submit(
        hass, flow_id, **{CONF_RELAY_URL: relay.url + "/nope", CONF_RELAY_TOKEN: "t"}
    )
    assert result["description_placeholders"] == {"reason": "HTTP 404: 404: Not Found"}


async def test_empty_token_keeps_the_saved_one_and_switching_off_removes_everything(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    relay: RelayServer,
    relay_home: tuple[str, str],
    entity_registry: er.EntityRegistry,
) -> None:
    token = relay_home[1]
    flow_id = await open_relay_step(hass, loaded_entry)
    await submit(hass, flow_id, **{CONF_RELAY_URL: relay.url, CONF_RELAY_TOKEN: token})
    await hass.async_block_till_done(wait_background_tasks=True)

    flow_id = await open_relay_step(hass, loaded_entry)
    result = await submit(hass, flow_id, **{CONF_RELAY_URL: relay.url, CONF_PUSH_INTERVAL: 300})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert loaded_entry.options[CONF_RELAY_TOKEN] == token
    assert loaded_entry.options[CONF_PUSH_INTERVAL] == 300
    assert entity_registry.async_get(CONNECTION) is not None

    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    schema = {str(key): key for key in result["data_schema"].schema}
    assert schema[CONF_RELAY_ENABLED].default() is True
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_RELAY_ENABLED: False}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not {CONF_RELAY_URL, CONF_RELAY_TOKEN, CONF_RELAY_HOME_ID} & set(loaded_entry.options)
    assert loaded_entry.runtime_data.pusher is None
    assert entity_registry.async_get(CONNECTION) is None
    assert hass.states.get("sensor.hue_bridge_relay_queue") is None


@pytest.mark.parametrize("interval", [30, 3600])
async def test_push_interval_stays_within_what_the_relay_expects(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, relay: RelayServer, interval: int
) -> None:
    from homeassistant.data_entry_flow import InvalidData

    flow_id = await open_relay_step(hass, loaded_entry)
    with pytest.raises(InvalidData):
        await submit(hass, flow_id, **{CONF_RELAY_URL: relay.url, CONF_PUSH_INTERVAL: interval})
