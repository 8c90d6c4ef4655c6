"""Home Assistant fixtures: the integration wired to the Hue cloud simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

from homeassistant.components.application_credentials import (
    ClientCredential,
    async_import_client_credential,
)
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.hpoll import const
from custom_components.hpoll.const import (
    CONF_APP_KEY,
    CONF_BRIDGE_ID,
    CONF_PUSH_INTERVAL,
    CONF_RELAY_HOME_ID,
    CONF_RELAY_TOKEN,
    CONF_RELAY_URL,
    DOMAIN,
)
from tests.conftest import APP_KEY, CLIENT_ID, CLIENT_SECRET, RunningCloud
from tests.relay_server import RelayServer

BRIDGE_ID = "aabbccddeeffggh"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/ in every test."""


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots that mask registry ids and timestamps (HA's serializer)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create entities that are disabled by default too (for snapshots)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
def cloud_urls(hue_cloud: RunningCloud) -> Iterator[RunningCloud]:
    """Point the integration's API and OAuth URLs at the simulator."""
    with (
        patch.object(const, "API_BASE_URL", hue_cloud.base_url),
        patch.object(const, "OAUTH2_AUTHORIZE_URL", f"{hue_cloud.base_url}/v2/oauth2/authorize"),
        patch.object(const, "OAUTH2_TOKEN_URL", f"{hue_cloud.base_url}/v2/oauth2/token"),
    ):
        yield hue_cloud


@pytest.fixture
async def credentials(hass: HomeAssistant) -> None:
    """The user's Hue developer app, entered under Application Credentials."""
    assert await async_setup_component(hass, "application_credentials", {})
    await async_import_client_credential(
        hass, DOMAIN, ClientCredential(CLIENT_ID, CLIENT_SECRET), DOMAIN
    )


def entry_token(cloud: RunningCloud, expires_in: float = 3600) -> dict[str, Any]:
    """A token as HA stores it, issued by the simulator."""
    import time

    token = dict(cloud.issue_tokens())
    token["expires_at"] = time.time() + expires_in
    return token


@pytest.fixture
def config_entry(cloud_urls: RunningCloud) -> MockConfigEntry:
    """An entry as the config flow creates it."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Hue Bridge",
        unique_id=BRIDGE_ID,
        data={
            "auth_implementation": DOMAIN,
            "token": entry_token(cloud_urls),
            CONF_APP_KEY: APP_KEY,
            CONF_BRIDGE_ID: BRIDGE_ID,
        },
    )


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, credentials: None, config_entry: MockConfigEntry
) -> MockConfigEntry:
    """The entry set up against the simulator."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry


@pytest.fixture(scope="session")
def relay_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated relay database, copied for each test (migrating costs a second)."""
    return RelayServer(tmp_path_factory.mktemp("relay-template")).db_path


@pytest.fixture
def relay(socket_enabled: None, tmp_path: Path, relay_template: Path) -> Iterator[RelayServer]:
    """The real relay (``python -m relay serve``, SQLite) on a loopback port."""
    server = RelayServer(tmp_path, relay_template)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def relay_home(relay: RelayServer) -> tuple[str, str]:
    """A home on the relay, added with its CLI: (home id, token)."""
    return relay.add_home()


@pytest.fixture
def relay_options(relay: RelayServer, relay_home: tuple[str, str]) -> dict[str, Any]:
    """Options as the relay step of the options flow saves them."""
    return {
        CONF_RELAY_URL: relay.url,
        CONF_RELAY_TOKEN: relay_home[1],
        CONF_RELAY_HOME_ID: relay_home[0],
        CONF_PUSH_INTERVAL: 60,
    }
