"""Token requests go to Hue with HTTP Basic; failures map to reauth or retry as HA expects."""

from __future__ import annotations

from typing import Any

from homeassistant.components.application_credentials import ClientCredential
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    OAuth2TokenRequestConnectionError,
    OAuth2TokenRequestReauthError,
    OAuth2TokenRequestTransientError,
)
import pytest

from custom_components.hpoll.application_credentials import (
    async_get_auth_implementation,
    async_get_authorization_server,
    async_get_description_placeholders,
)
from custom_components.hpoll.const import DOMAIN
from huesim.oauth import OAuthError
from tests.conftest import CLIENT_ID, CLIENT_SECRET, RunningCloud


async def _implementation(hass: HomeAssistant, secret: str = CLIENT_SECRET) -> Any:
    return await async_get_auth_implementation(hass, DOMAIN, ClientCredential(CLIENT_ID, secret))


async def test_urls_and_placeholders(hass: HomeAssistant, cloud_urls: RunningCloud) -> None:
    server = await async_get_authorization_server(hass)
    assert server.token_url == f"{cloud_urls.base_url}/v2/oauth2/token"
    placeholders = await async_get_description_placeholders(hass)
    assert placeholders["redirect_url"] == "https://my.home-assistant.io/redirect/oauth"


async def test_refresh_rotates_tokens(hass: HomeAssistant, cloud_urls: RunningCloud) -> None:
    tokens = cloud_urls.issue_tokens()
    refreshed = await (await _implementation(hass)).async_refresh_token(dict(tokens))
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["expires_at"] > 0


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, OAuth2TokenRequestReauthError),
        (503, OAuth2TokenRequestTransientError),
        (429, OAuth2TokenRequestTransientError),
    ],
)
async def test_refresh_failures_map_to_ha_errors(
    hass: HomeAssistant,
    cloud_urls: RunningCloud,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    error: type[Exception],
) -> None:
    def refuse(*_: object) -> None:
        raise OAuthError(status, "nope", "refused")

    monkeypatch.setattr(cloud_urls.sim.oauth, "refresh", refuse)
    with pytest.raises(error) as caught:
        await (await _implementation(hass)).async_refresh_token({"refresh_token": "r"})
    assert caught.value.status == status  # type: ignore[attr-defined]


async def test_wrong_secret_needs_reauth(hass: HomeAssistant, cloud_urls: RunningCloud) -> None:
    tokens = cloud_urls.issue_tokens()
    with pytest.raises(OAuth2TokenRequestReauthError):
        await (await _implementation(hass, "wrong")).async_refresh_token(dict(tokens))


async def test_unreachable_token_endpoint(hass: HomeAssistant, cloud_urls: RunningCloud) -> None:
    await cloud_urls.server.close()
    with pytest.raises(OAuth2TokenRequestConnectionError):
        await (await _implementation(hass)).async_refresh_token({"refresh_token": "r"})


async def test_refresh_without_access_token_is_refused(
    hass: HomeAssistant, cloud_urls: RunningCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cloud_urls.sim.oauth, "refresh", lambda *_: {"expires_in": 5})
    with pytest.raises(OAuth2TokenRequestConnectionError):
        await (await _implementation(hass)).async_refresh_token({"refresh_token": "r"})
