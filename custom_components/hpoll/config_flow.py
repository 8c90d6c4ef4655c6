"""Config flow: Hue sign-in (OAuth2), then the bridge is linked remotely (virtual link button).

Also: reauth (tokens revoked or refresh refused: sign in again, keep the entry and entities),
reconfigure (create a fresh application key). Options live in options_flow.py.
"""

from __future__ import annotations

from collections.abc import Mapping
import logging
import re
from typing import Any, override

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigFlowResult,
)
from homeassistant.const import CONF_TOKEN
from homeassistant.core import callback
from homeassistant.exceptions import (
    HomeAssistantError,
    OAuth2TokenRequestBaseError,
    OAuth2TokenRequestReauthError,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.config_entry_oauth2_flow import (
    AbstractOAuth2FlowHandler,
    OAuth2Session,
    async_get_config_entry_implementation,
)

from . import const
from .const import (
    CONF_APP_KEY,
    CONF_BRIDGE_ID,
    DOMAIN,
)
from .coordinator import HpollConfigEntry
from .hue import (
    BridgeConfig,
    HueAppKeyError,
    HueAuthError,
    HueBridgeOfflineError,
    HueError,
    HueLinkError,
    HueRemoteClient,
)
from .options_flow import HpollOptionsFlow

_LOGGER = logging.getLogger(__name__)


class HpollConfigFlow(AbstractOAuth2FlowHandler, domain=DOMAIN):
    """Sign in to Hue, link the bridge, one entry per bridge."""

    DOMAIN = DOMAIN
    VERSION = 1

    def __init__(self) -> None:
        """Nothing known until the user has signed in."""
        super().__init__()
        self._oauth_data: dict[str, Any] = {}
        self._client: HueRemoteClient | None = None
        self._bridge: BridgeConfig | None = None

    @property
    @override
    def logger(self) -> logging.Logger:
        return _LOGGER

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: HpollConfigEntry) -> HpollOptionsFlow:
        return HpollOptionsFlow()

    def _make_client(self, access_token: str, app_key: str | None = None) -> HueRemoteClient:
        async def token() -> str:
            return access_token

        return HueRemoteClient(
            async_get_clientsession(self.hass), token, app_key, base_url=const.API_BASE_URL
        )

    @override
    async def async_oauth_create_entry(self, data: dict[str, Any]) -> ConfigFlowResult:
        """Signed in: find out which bridge this account reaches, then link it."""
        self._oauth_data = data
        app_key = (
            self._get_reauth_entry().data[CONF_APP_KEY] if self.source == SOURCE_REAUTH else None
        )
        self._client = self._make_client(data[CONF_TOKEN]["access_token"], app_key)
        try:
            self._bridge = await self._client.get_bridge_config()
        except HueAuthError:
            return self.async_abort(reason="invalid_auth")
        except HueBridgeOfflineError:
            return self.async_abort(reason="bridge_offline")
        except HueError:
            return self.async_abort(reason="cannot_connect")
        await self.async_set_unique_id(self._bridge.bridge_id)

        if self.source == SOURCE_REAUTH:
            self._abort_if_unique_id_mismatch(reason="wrong_bridge")
            # New tokens; keep the application key unless the bridge has forgotten it.
            try:
                await self._client.get_resources()
            except HueAppKeyError:
                return await self.async_step_link()
            except HueError:
                pass  # not a key problem; the entry's own polling will tell
            return self.async_update_reload_and_abort(
                self._get_reauth_entry(), data_updates={CONF_TOKEN: data[CONF_TOKEN]}
            )

        self._abort_if_unique_id_configured()
        return await self.async_step_link()

    async def async_step_link(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask the user to go ahead, then press the link button virtually and create a key."""
        assert self._client is not None
        assert self._bridge is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                app_key = await self._client.create_app_key(
                    _devicetype(self.hass.config.location_name)
                )
            except HueLinkError:
                errors["base"] = "link_failed"
            except HueBridgeOfflineError:
                errors["base"] = "bridge_offline"
            except HueError:
                errors["base"] = "cannot_connect"
            else:
                entry_data = {
                    **self._oauth_data,
                    CONF_APP_KEY: app_key,
                    CONF_BRIDGE_ID: self._bridge.bridge_id,
                }
                if self.source == SOURCE_REAUTH:
                    return self.async_update_reload_and_abort(
                        self._get_reauth_entry(), data=entry_data
                    )
                return self.async_create_entry(title=self._bridge.name, data=entry_data)
        return self.async_show_form(
            step_id="link",
            errors=errors,
            description_placeholders={"bridge": self._bridge.name},
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Hue refused our tokens or the bridge our application key: say which, truthfully."""
        if await self._app_key_forgotten():
            return await self.async_step_reauth_app_key()
        return await self.async_step_reauth_confirm()

    async def _app_key_forgotten(self) -> bool:
        """True when the sign-in still works but the bridge no longer knows our key."""
        entry = self._get_reauth_entry()
        try:
            implementation = await async_get_config_entry_implementation(self.hass, entry)
            oauth = OAuth2Session(self.hass, entry, implementation)
            await oauth.async_ensure_token_valid()
            client = self._make_client(str(oauth.token["access_token"]), entry.data[CONF_APP_KEY])
            await client.get_resources()
        except HueAppKeyError:
            return True
        except (HueError, HomeAssistantError, KeyError):
            return False  # the sign-in itself (or a token without expiry): the general text
        return False

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The sign-in expired or was revoked: explain, then sign in again."""
        if user_input is None:
            return self.async_show_form(
                step_id="reauth_confirm",
                description_placeholders={"bridge": self._get_reauth_entry().title},
            )
        return await self.async_step_user()

    async def async_step_reauth_app_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The bridge forgot hpoll's key (removed in the Hue app, or a reset): explain, then
        sign in and link again."""
        if user_input is None:
            return self.async_show_form(
                step_id="reauth_app_key",
                description_placeholders={"bridge": self._get_reauth_entry().title},
            )
        return await self.async_step_user()

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Link the bridge again: a new application key, same entry and entities."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                implementation = await async_get_config_entry_implementation(self.hass, entry)
                oauth = OAuth2Session(self.hass, entry, implementation)
                await oauth.async_ensure_token_valid()
                client = self._make_client(str(oauth.token["access_token"]))
                bridge = await client.get_bridge_config()
                await self.async_set_unique_id(bridge.bridge_id)
                self._abort_if_unique_id_mismatch(reason="wrong_bridge")
                app_key = await client.create_app_key(_devicetype(self.hass.config.location_name))
            except (OAuth2TokenRequestReauthError, HueAuthError):
                return self.async_abort(reason="reauth_required")
            except HueLinkError:
                errors["base"] = "link_failed"
            except HueBridgeOfflineError:
                errors["base"] = "bridge_offline"
            except (HueError, OAuth2TokenRequestBaseError):
                errors["base"] = "cannot_connect"
            else:
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_APP_KEY: app_key}
                )
        return self.async_show_form(
            step_id="reconfigure",
            errors=errors,
            description_placeholders={"bridge": entry.title},
        )


def _devicetype(location: str) -> str:
    """CLIP v1's devicetype: ``app#device``, at most 20 + 19 characters."""
    cleaned = re.sub(r"\s+", " ", re.sub(r"[^A-Za-z0-9 _-]", "", location))
    device = cleaned.strip()[:19].strip() or "homeassistant"
    return f"hpoll#{device}"
