"""The client against the Hue cloud simulator over real loopback HTTP: the whole lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import ClientSession
import pytest

from custom_components.hpoll.hue import (
    ConnectivityStatus,
    HueAppKeyError,
    HueAuthError,
    HueBridgeOfflineError,
    HueLinkError,
    HueRateLimitedError,
    HueRemoteClient,
)
from tests.conftest import RunningCloud

SENSOR_DEVICE = "fb657eb4-38ba-fd3c-7535-d56f4350699f"


@pytest.fixture
async def session() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


@pytest.fixture
def client(hue_cloud: RunningCloud, session: ClientSession) -> HueRemoteClient:
    token = str(hue_cloud.issue_tokens()["access_token"])

    async def provider() -> str:
        return token

    return HueRemoteClient(session, provider, base_url=hue_cloud.base_url)


async def test_link_then_poll_sees_the_world_change(
    hue_cloud: RunningCloud, client: HueRemoteClient
) -> None:
    config = await client.get_bridge_config()
    assert config.bridge_id == hue_cloud.sim.bridge_id
    key = await client.create_app_key("hpoll#test")
    assert key in hue_cloud.sim.app_keys

    before = await client.get_resources()
    assert before.bridge is not None
    assert before.bridge.bridge_id == config.bridge_id

    world = hue_cloud.sim.world
    world.move(SENSOR_DEVICE, seconds=2)
    world.set_battery(SENSOR_DEVICE, 4)
    world.set_connectivity(SENSOR_DEVICE, "disconnected")
    hue_cloud.clock.advance(1)
    during = (await client.get_resources()).devices[SENSOR_DEVICE]
    assert during.motion is not None
    assert during.motion.motion is True
    assert during.power is not None
    assert (during.power.battery_level, during.power.battery_state) == (4, "critical")
    assert during.connectivity is not None
    assert during.connectivity.status is ConnectivityStatus.DISCONNECTED

    hue_cloud.clock.advance(20)
    after = (await client.get_resources()).devices[SENSOR_DEVICE]
    assert after.motion is not None
    assert during.motion.changed is not None
    assert after.motion.changed == during.motion.changed + timedelta(seconds=12)
    assert hue_cloud.sim.requests["GET /route/clip/v2/resource"] == 3


async def test_failures_arrive_typed(hue_cloud: RunningCloud, client: HueRemoteClient) -> None:
    await client.create_app_key("hpoll#test")
    world = hue_cloud.sim.world
    world.rate_limit(1, retry_after=12)
    with pytest.raises(HueRateLimitedError) as limited:
        await client.get_resources()
    assert limited.value.retry_after == 12

    now = hue_cloud.clock.now()
    world.bridge_offline(now, now + timedelta(minutes=1))
    with pytest.raises(HueBridgeOfflineError):
        await client.get_resources()
    hue_cloud.clock.advance(60)
    assert (await client.get_resources()).devices

    hue_cloud.sim.app_keys.clear()
    with pytest.raises(HueAppKeyError):
        await client.get_resources()

    hue_cloud.sim.oauth.expire_access_tokens()
    with pytest.raises(HueAuthError, match="access_token_expired"):
        await client.get_resources()


async def test_link_fails_when_the_press_does_not_reach_the_bridge(
    hue_cloud: RunningCloud, client: HueRemoteClient
) -> None:
    hue_cloud.sim.link_button_works = False
    with pytest.raises(HueLinkError, match="link button not pressed"):
        await client.create_app_key("hpoll#test")
    assert client.app_key is None
