"""Application credentials: the user's own Hue developer app (client id and secret).

Hue's token endpoint authenticates the client with HTTP Basic; Home Assistant's default
implementation puts the credentials in the form body, which Hue refuses. Refresh tokens rotate:
every refresh returns a new one, which OAuth2Session stores on the config entry.
"""

from __future__ import annotations

from typing import Any, cast, override

from aiohttp import ClientError, ClientResponseError, encode_basic_auth
from homeassistant.components.application_credentials import (
    AuthImplementation,
    AuthorizationServer,
    ClientCredential,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    OAuth2TokenRequestConnectionError,
    OAuth2TokenRequestReauthError,
    OAuth2TokenRequestTransientError,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from . import const


async def async_get_authorization_server(hass: HomeAssistant) -> AuthorizationServer:
    """The Hue Remote API's OAuth2 endpoints."""
    return AuthorizationServer(
        authorize_url=const.OAUTH2_AUTHORIZE_URL, token_url=const.OAUTH2_TOKEN_URL
    )


async def async_get_auth_implementation(
    hass: HomeAssistant, auth_domain: str, credential: ClientCredential
) -> HueOAuth2Implementation:
    """An implementation that authenticates to the token endpoint with HTTP Basic."""
    return HueOAuth2Implementation(
        hass,
        auth_domain,
        credential,
        AuthorizationServer(
            authorize_url=const.OAUTH2_AUTHORIZE_URL, token_url=const.OAUTH2_TOKEN_URL
        ),
    )


async def async_get_description_placeholders(hass: HomeAssistant) -> dict[str, str]:
    """Where to register the Hue app, shown when the user enters its credentials."""
    return {
        "developer_url": "https://developers.meethue.com/my-apps/",
        "redirect_url": "https://my.home-assistant.io/redirect/oauth",
    }


class HueOAuth2Implementation(AuthImplementation):
    """OAuth2 against Hue: client credentials as HTTP Basic, never in the body."""

    @override
    async def _token_request(self, data: dict[str, Any]) -> dict[str, Any]:
        session = async_get_clientsession(self.hass)
        headers = {"Authorization": encode_basic_auth(self.client_id, self.client_secret)}
        try:
            async with session.post(self.token_url, data=data, headers=headers) as response:
                response.raise_for_status()
                return cast(dict[str, Any], await response.json())
        except ClientResponseError as err:
            # The same split HA makes for its own implementation: 429/5xx can heal, any other
            # error status (raise_for_status: >= 400) means the grant is gone: sign in again.
            kwargs: dict[str, Any] = {
                "request_info": err.request_info,
                "history": err.history,
                "status": err.status,
                "message": err.message,
                "headers": err.headers,
                "domain": self.domain,
            }
            if err.status == 429 or err.status >= 500:
                raise OAuth2TokenRequestTransientError(**kwargs) from err
            raise OAuth2TokenRequestReauthError(**kwargs) from err
        except ClientError as err:
            raise OAuth2TokenRequestConnectionError(domain=self.domain) from err

    @override
    async def _async_refresh_token(self, token: dict[str, Any]) -> dict[str, Any]:
        new_token = await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
        )
        if not new_token.get("access_token"):
            raise OAuth2TokenRequestConnectionError(domain=self.domain)
        return {**token, **new_token}
