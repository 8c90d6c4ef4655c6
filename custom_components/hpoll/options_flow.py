"""Options: entity groups, inactivity, and the optional push to an hpoll relay.

Polling is not an option: it is automatic (see coordinator.poll_interval).

The relay step checks URL and token live (``GET /api/v1/home``) before anything is saved, so a
typo shows as a form error instead of a silent queue that never drains.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlowResult, OptionsFlowWithReload
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
    TimeSelector,
)
import probatio

from .const import (
    CONF_ENTITY_GROUPS,
    CONF_INACTIVITY_HOURS,
    CONF_PUSH_INTERVAL,
    CONF_QUIET_END,
    CONF_QUIET_START,
    CONF_RELAY_ENABLED,
    CONF_RELAY_HOME_ID,
    CONF_RELAY_TOKEN,
    CONF_RELAY_URL,
    DEFAULT_INACTIVITY_HOURS,
    DEFAULT_PUSH_INTERVAL,
    DEFAULT_QUIET_END,
    DEFAULT_QUIET_START,
    ENTITY_GROUPS,
    MAX_PUSH_INTERVAL,
    MIN_PUSH_INTERVAL,
)
from .relay_client import (
    RelayClient,
    RelayError,
    RelayHome,
    RelayTokenRejectedError,
    normalize_url,
)


def _seconds(low: int, high: int) -> Any:
    return probatio.All(
        NumberSelector(
            NumberSelectorConfig(
                min=low, max=high, step=1, unit_of_measurement="s", mode=NumberSelectorMode.BOX
            )
        ),
        probatio.Coerce(int),
        probatio.Range(min=low, max=high),
    )


class HpollOptionsFlow(OptionsFlowWithReload):
    """Settings first; the relay step follows when pushing to a relay is switched on."""

    def __init__(self) -> None:
        """Settings are kept between the two steps."""
        self._settings: dict[str, Any] = {}

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Entity groups, inactivity, and whether to push to a relay."""
        if user_input is not None:
            self._settings = {
                CONF_ENTITY_GROUPS: list(user_input[CONF_ENTITY_GROUPS]),
                CONF_INACTIVITY_HOURS: float(user_input[CONF_INACTIVITY_HOURS]),
                CONF_QUIET_START: user_input[CONF_QUIET_START],
                CONF_QUIET_END: user_input[CONF_QUIET_END],
            }
            if user_input.get(CONF_RELAY_ENABLED):
                return await self.async_step_relay()
            return self.async_create_entry(data=self._settings)
        options = self.config_entry.options
        schema = probatio.Schema(
            {
                probatio.Required(
                    CONF_ENTITY_GROUPS,
                    default=list(options.get(CONF_ENTITY_GROUPS, ENTITY_GROUPS)),
                ): SelectSelector(
                    SelectSelectorConfig(
                        options=list(ENTITY_GROUPS),
                        multiple=True,
                        translation_key=CONF_ENTITY_GROUPS,
                    )
                ),
                probatio.Required(
                    CONF_INACTIVITY_HOURS,
                    default=options.get(CONF_INACTIVITY_HOURS, DEFAULT_INACTIVITY_HOURS),
                ): probatio.All(
                    NumberSelector(
                        NumberSelectorConfig(
                            min=0.5,
                            max=24,
                            step=0.5,
                            unit_of_measurement="h",
                            mode=NumberSelectorMode.BOX,
                        )
                    ),
                    probatio.Coerce(float),
                    probatio.Range(min=0.5, max=24),
                ),
                probatio.Required(
                    CONF_QUIET_START, default=options.get(CONF_QUIET_START, DEFAULT_QUIET_START)
                ): TimeSelector(),
                probatio.Required(
                    CONF_QUIET_END, default=options.get(CONF_QUIET_END, DEFAULT_QUIET_END)
                ): TimeSelector(),
                probatio.Required(
                    CONF_RELAY_ENABLED, default=bool(options.get(CONF_RELAY_URL))
                ): BooleanSelector(),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)

    async def async_step_relay(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Relay URL and this home's token (from ``hpoll-relay home add``), checked live."""
        options = self.config_entry.options
        errors: dict[str, str] = {}
        placeholders = {"reason": ""}
        if user_input is not None:
            # An empty token field keeps the saved token (it is never shown again).
            token = (user_input.get(CONF_RELAY_TOKEN) or "").strip() or options.get(
                CONF_RELAY_TOKEN, ""
            )
            try:
                url = normalize_url(user_input[CONF_RELAY_URL])
            except ValueError:
                errors[CONF_RELAY_URL] = "invalid_url"
            else:
                if not token:
                    errors[CONF_RELAY_TOKEN] = "token_required"
                else:
                    home, error, reason = await self._check_relay(url, token)
                    if home is not None:
                        return self.async_create_entry(
                            data={
                                **self._settings,
                                CONF_RELAY_URL: url,
                                CONF_RELAY_TOKEN: token,
                                CONF_RELAY_HOME_ID: home.id,
                                CONF_PUSH_INTERVAL: int(user_input[CONF_PUSH_INTERVAL]),
                            }
                        )
                    errors["base"] = error
                    placeholders["reason"] = reason
        schema = probatio.Schema(
            {
                probatio.Required(
                    CONF_RELAY_URL, default=options.get(CONF_RELAY_URL, "")
                ): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
                probatio.Optional(CONF_RELAY_TOKEN): TextSelector(
                    TextSelectorConfig(type=TextSelectorType.PASSWORD)
                ),
                probatio.Required(
                    CONF_PUSH_INTERVAL,
                    default=options.get(CONF_PUSH_INTERVAL, DEFAULT_PUSH_INTERVAL),
                ): _seconds(MIN_PUSH_INTERVAL, MAX_PUSH_INTERVAL),
            }
        )
        if user_input is not None:
            schema = self.add_suggested_values_to_schema(
                schema, {k: v for k, v in user_input.items() if k != CONF_RELAY_TOKEN}
            )
        return self.async_show_form(
            step_id="relay",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _check_relay(self, url: str, token: str) -> tuple[RelayHome | None, str, str]:
        client = RelayClient(async_get_clientsession(self.hass), url, token)
        try:
            return await client.own_home(), "", ""
        except RelayTokenRejectedError as err:
            return None, "invalid_token", err.reason
        except RelayError as err:
            return None, "cannot_connect", err.reason
