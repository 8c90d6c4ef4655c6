"""HPOLL_HUE_BASE_URL: pointing the integration at another Hue cloud, for development and demos."""

from __future__ import annotations

import os
import subprocess
import sys
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest

from custom_components.hpoll import const
from custom_components.hpoll.const import DOMAIN


def _urls_with(environ: dict[str, str]) -> list[str]:
    """The integration's Hue URLs as a fresh Home Assistant process would read them."""
    probe = (
        "from custom_components.hpoll import const as c;"
        "print(c.API_BASE_URL, c.OAUTH2_AUTHORIZE_URL, c.OAUTH2_TOKEN_URL)"
    )
    env = {k: v for k, v in os.environ.items() if k != const.ENV_HUE_BASE_URL} | environ
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed probe
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_the_environment_decides_when_the_integration_loads() -> None:
    assert _urls_with({}) == [
        "https://api.meethue.com",
        "https://api.meethue.com/v2/oauth2/authorize",
        "https://api.meethue.com/v2/oauth2/token",
    ]
    assert _urls_with({const.ENV_HUE_BASE_URL: " http://127.0.0.1:8765/ "}) == [
        "http://127.0.0.1:8765",
        "http://127.0.0.1:8765/v2/oauth2/authorize",
        "http://127.0.0.1:8765/v2/oauth2/token",
    ]


async def test_setup_warns_while_overridden(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    with patch.object(const, "HUE_BASE_URL_OVERRIDE", "http://127.0.0.1:8765"):
        assert await async_setup_component(hass, DOMAIN, {})
    assert "Talking to the Hue cloud at http://127.0.0.1:8765 (from HPOLL_HUE_BASE_URL)" in (
        caplog.text
    )


async def test_no_warning_against_hue(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    assert const.HUE_BASE_URL_OVERRIDE is None
    assert await async_setup_component(hass, DOMAIN, {})
    assert "Talking to the Hue cloud" not in caplog.text


@pytest.mark.parametrize("value", ["ftp://127.0.0.1", "127.0.0.1:8765", "http://"])
async def test_a_malformed_override_fails_setup(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    with patch.object(const, "HUE_BASE_URL_OVERRIDE", value):
        assert not await async_setup_component(hass, DOMAIN, {})
    assert "HPOLL_HUE_BASE_URL must be an http(s) URL" in caplog.text
