"""Polling: what changes shows up, what fails becomes visible, nothing is written needlessly."""

from __future__ import annotations

from datetime import timedelta
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import EVENT_STATE_CHANGED, STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.hpoll.const import DOMAIN
from huesim.oauth import OAuthError
from tests.conftest import RunningCloud
from tests.hpoll.helpers import poll, setup_with_options, state_of

MOTION = "binary_sensor.room_1_device_46_motion"
LAST_MOTION = "sensor.room_1_device_46_last_motion"
CONNECTION = "binary_sensor.hue_bridge_cloud_connection"
SENSOR_DEVICE = "7bd86197-ef7c-7625-3170-1b6de1502441"
RESOURCES = "GET /route/clip/v2/resource"


async def test_motion_shows_up(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    assert state_of(hass, MOTION) == STATE_OFF
    before = state_of(hass, LAST_MOTION)
    hue_cloud.sim.world.move(SENSOR_DEVICE, seconds=30)
    hue_cloud.clock.advance(1)
    await poll(hass, freezer)
    assert state_of(hass, MOTION) == STATE_ON
    assert state_of(hass, LAST_MOTION) != before
    hue_cloud.clock.advance(60)
    await poll(hass, freezer)
    assert state_of(hass, MOTION) == STATE_OFF


async def test_unchanged_poll_writes_no_state(
    hass: HomeAssistant,
    credentials: None,
    config_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    # No quiet hours: Inactive must not flip because the test happens to run at 22:00 or 07:00.
    await setup_with_options(
        hass, config_entry, {"quiet_start": "00:00:00", "quiet_end": "00:00:00"}
    )
    # The capture froze one sensor mid-movement (presence goes on, and "last activity" with
    # it): let that movement end first, so nothing at all changes at the bridge.
    hue_cloud.sim.world.settle_motion()
    await poll(hass, freezer)
    changes: list[Event[Any]] = []
    hass.bus.async_listen(EVENT_STATE_CHANGED, changes.append)
    await poll(hass, freezer)
    await poll(hass, freezer)
    assert hue_cloud.sim.requests[RESOURCES] == 4
    assert changes == []
    # The listener does see real changes: one movement, one poll, a few entities change.
    hue_cloud.clock.advance(5)
    hue_cloud.sim.world.move(SENSOR_DEVICE)
    await poll(hass, freezer)
    assert {event.data["entity_id"] for event in changes} == {
        MOTION,
        LAST_MOTION,
        "sensor.hue_bridge_last_activity",
        "sensor.hue_bridge_activity_today",
        "sensor.room_1_last_activity",
        "sensor.room_1_activity_today",
    }


async def test_refresh_token_rotates_and_is_persisted(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    old = dict(loaded_entry.data["token"])
    hass.config_entries.async_update_entry(
        loaded_entry, data={**loaded_entry.data, "token": {**old, "expires_at": time.time() - 1}}
    )
    await poll(hass, freezer)
    new = loaded_entry.data["token"]
    assert new["refresh_token"] != old["refresh_token"]
    assert new["access_token"] != old["access_token"]
    assert state_of(hass, CONNECTION) == STATE_ON
    # The spent refresh token is dead at Hue: only the stored new one can ever work.
    with pytest.raises(OAuthError):
        hue_cloud.sim.oauth.refresh("test-client", old["refresh_token"])


def _reauth_flows(hass: HomeAssistant) -> list[Any]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress()
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


@pytest.mark.parametrize("breakage", ["revoked_grant", "token_revoked", "app_key_forgotten"])
async def test_auth_failures_start_reauth(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
    breakage: str,
) -> None:
    if breakage == "revoked_grant":
        hue_cloud.sim.oauth.revoke_all()
        token = {**loaded_entry.data["token"], "expires_at": time.time() - 1}
        hass.config_entries.async_update_entry(
            loaded_entry, data={**loaded_entry.data, "token": token}
        )
    elif breakage == "token_revoked":
        hue_cloud.sim.oauth.revoke_all()  # the access token stops working before its expiry
    else:
        hue_cloud.sim.app_keys.clear()
    await poll(hass, freezer)
    assert len(_reauth_flows(hass)) == 1
    assert state_of(hass, MOTION) == STATE_UNAVAILABLE
    assert state_of(hass, CONNECTION) == STATE_OFF
    connection = hass.states.get(CONNECTION)
    assert connection is not None
    assert connection.attributes["problem"] == "authentication"


async def test_token_ended_early_is_refreshed_once_not_reauth(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    old_token = loaded_entry.data["token"]["access_token"]
    hue_cloud.sim.oauth.expire_access_tokens()  # before the lifetime it was issued with
    await poll(hass, freezer)
    assert _reauth_flows(hass) == []
    assert state_of(hass, CONNECTION) == STATE_ON
    assert loaded_entry.data["token"]["access_token"] != old_token


async def test_a_short_rate_limit_keeps_the_last_states(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    before = {s.entity_id: s.state for s in hass.states.async_all()}
    hue_cloud.sim.world.rate_limit(1, retry_after=90)
    await poll(hass, freezer)
    after = {s.entity_id: s.state for s in hass.states.async_all()}
    changed = {e for e in before if before[e] != after.get(e)}
    assert changed == {CONNECTION}  # off, saying why; nothing else blanks
    assert hass.states.get(CONNECTION).attributes["problem"] == "rate_limited"  # type: ignore[union-attr]
    assert STATE_UNAVAILABLE not in after.values()
    await poll(hass, freezer, 91)
    assert state_of(hass, CONNECTION) == STATE_ON

    hue_cloud.sim.world.rate_limit(1, retry_after=1800)  # long: the data would grow old
    requests = hue_cloud.sim.requests[RESOURCES]
    await poll(hass, freezer)
    assert hue_cloud.sim.requests[RESOURCES] == requests + 1
    assert state_of(hass, MOTION) == STATE_UNAVAILABLE


async def test_rate_limit_honours_retry_after(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    hue_cloud.sim.world.rate_limit(1, retry_after=300)
    await poll(hass, freezer)
    assert hue_cloud.sim.requests[RESOURCES] == 2
    attributes = hass.states.get(CONNECTION).attributes  # type: ignore[union-attr]
    assert attributes["problem"] == "rate_limited"
    await poll(hass, freezer, 120)
    assert hue_cloud.sim.requests[RESOURCES] == 2  # still waiting as told
    await poll(hass, freezer, 181)
    assert hue_cloud.sim.requests[RESOURCES] == 3
    assert state_of(hass, CONNECTION) == STATE_ON


async def test_rate_limit_without_retry_after_backs_off(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    hue_cloud.sim.world.rate_limit(2)
    await poll(hass, freezer)  # 429 #1: wait 2 x 60 s
    assert hue_cloud.sim.requests[RESOURCES] == 2
    await poll(hass, freezer, 121)  # 429 #2: wait 4 x 60 s
    assert hue_cloud.sim.requests[RESOURCES] == 3
    await poll(hass, freezer, 200)
    assert hue_cloud.sim.requests[RESOURCES] == 3
    await poll(hass, freezer, 41)
    assert hue_cloud.sim.requests[RESOURCES] == 4
    assert state_of(hass, CONNECTION) == STATE_ON


async def test_sustained_outage_raises_and_clears_a_repair_issue(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    now = hue_cloud.clock.now()
    hue_cloud.sim.world.bridge_offline(now, now + timedelta(hours=2))
    issue_id = f"bridge_offline_{loaded_entry.entry_id}"
    await poll(hass, freezer)
    assert state_of(hass, MOTION) == STATE_UNAVAILABLE
    assert state_of(hass, CONNECTION) == STATE_OFF
    attributes = hass.states.get(CONNECTION).attributes  # type: ignore[union-attr]
    assert attributes["problem"] == "bridge_offline"
    assert attributes["offline_since"] is not None
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None  # a blip is not an issue
    for _ in range(30):
        await poll(hass, freezer)
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "bridge_offline"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["bridge"] == "Hue Bridge"
    hue_cloud.clock.advance(7200)
    await poll(hass, freezer)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert state_of(hass, MOTION) == STATE_OFF
    assert state_of(hass, CONNECTION) == STATE_ON


@pytest.mark.parametrize(
    ("breakage", "problem"),
    [
        ("cloud_error", "cloud_unreachable"),
        ("token_endpoint_down", "cloud_unreachable"),
        ("garbage", "invalid_response"),
    ],
)
async def test_other_failures_make_entities_unavailable(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    breakage: str,
    problem: str,
) -> None:
    now = hue_cloud.clock.now()
    if breakage == "cloud_error":
        hue_cloud.sim.world.bridge_offline(now, now + timedelta(hours=1), status=502)
    elif breakage == "token_endpoint_down":

        def down(*_: object) -> None:
            raise OAuthError(503, "temporarily_unavailable", "maintenance")

        monkeypatch.setattr(hue_cloud.sim.oauth, "refresh", down)
        token = {**loaded_entry.data["token"], "expires_at": time.time() - 1}
        hass.config_entries.async_update_entry(
            loaded_entry, data={**loaded_entry.data, "token": token}
        )
    else:
        monkeypatch.setattr(hue_cloud.sim.world, "resources", lambda rtype=None: {"x": 1})
    await poll(hass, freezer)
    assert state_of(hass, MOTION) == STATE_UNAVAILABLE
    attributes = hass.states.get(CONNECTION).attributes  # type: ignore[union-attr]
    assert attributes["problem"] == problem
    assert not _reauth_flows(hass)


@pytest.mark.parametrize(
    ("breakage", "state"),
    [("offline", ConfigEntryState.SETUP_RETRY), ("key", ConfigEntryState.SETUP_ERROR)],
)
async def test_setup_fails_visibly(
    hass: HomeAssistant,
    credentials: None,
    config_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    breakage: str,
    state: ConfigEntryState,
) -> None:
    now = hue_cloud.clock.now()
    if breakage == "offline":
        hue_cloud.sim.world.bridge_offline(now, now + timedelta(hours=1))
    else:
        hue_cloud.sim.app_keys.clear()
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is state


async def test_outage_is_logged_once_and_recovery_once(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = hue_cloud.clock.now()
    hue_cloud.sim.world.bridge_offline(now, now + timedelta(minutes=10), status=502)
    caplog.clear()
    for _ in range(3):
        await poll(hass, freezer)
    failures = [
        r
        for r in caplog.records
        if r.levelname == "ERROR" and r.name.startswith("custom_components.hpoll")
    ]
    assert len(failures) == 1
    assert "Hue cloud could not be reached" in failures[0].getMessage()
    hue_cloud.clock.advance(600)
    await poll(hass, freezer)
    assert [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    token = loaded_entry.data["token"]
    assert token["access_token"] not in caplog.text
    assert token["refresh_token"] not in caplog.text


async def test_polls_sit_on_the_interval_grid(
    hass: HomeAssistant,
    credentials: None,
    config_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    freezer.move_to("2026-07-28 12:00:10.300+00:00")
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert hue_cloud.sim.requests[RESOURCES] == 1
    for moment, polls in (
        ("12:00:59.000", 1),
        ("12:01:00.600", 2),
        ("12:01:59.000", 2),
        ("12:02:00.600", 3),
    ):
        freezer.move_to(f"2026-07-28 {moment}+00:00")
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert hue_cloud.sim.requests[RESOURCES] == polls, moment


@pytest.mark.parametrize(
    ("bridges", "seconds"), [(1, 60), (27, 60), (28, 120), (100, 240), (1000, 3600)]
)
def test_poll_interval_keeps_all_bridges_of_one_app_within_the_budget(
    bridges: int, seconds: int
) -> None:
    from custom_components.hpoll.const import DAILY_REQUEST_BUDGET
    from custom_components.hpoll.coordinator import poll_interval

    assert poll_interval(bridges) == seconds
    assert 3600 % seconds == 0  # on a grid the hour divides
    if seconds < 3600:
        assert bridges * 86_400 / seconds <= DAILY_REQUEST_BUDGET


def test_polls_sit_on_the_grid() -> None:
    from custom_components.hpoll.coordinator import GRID_LAG, seconds_to_grid

    grid = 60 * 16_666_667.0  # a minute's grid point
    assert seconds_to_grid(grid + 20, 60) == 40 + GRID_LAG
    # Just before a grid point: the next one, not a poll a moment after this one.
    assert seconds_to_grid(grid + 59.8, 60) == pytest.approx(0.2 + GRID_LAG + 60)
