"""Activity in Home Assistant: entities per room and home, the hpoll_activity event, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hpoll.const import EVENT_ACTIVITY
from tests.conftest import RunningCloud
from tests.hpoll.helpers import poll, state_of

SENSOR_DEVICE = "7bd86197-ef7c-7625-3170-1b6de1502441"  # Room 1
HOME_TODAY = "sensor.hue_bridge_activity_today"
ROOM_TODAY = "sensor.room_1_activity_today"
ROOM_LAST = "sensor.room_1_last_activity"


async def test_activity_counts_fires_events_and_survives_restarts(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    fired: list[Event[Any]] = []
    hass.bus.async_listen(EVENT_ACTIVITY, fired.append)
    assert state_of(hass, HOME_TODAY) == "0"
    # The capture froze another sensor mid-movement: let it have ended long before the capture.
    hue_cloud.sim.world.settle_motion(datetime(2020, 1, 1, tzinfo=UTC))
    hue_cloud.clock.advance(5)
    hue_cloud.sim.world.move(SENSOR_DEVICE)
    hue_cloud.clock.advance(30)  # the movement is over by the poll
    await poll(hass, freezer)
    assert state_of(hass, ROOM_TODAY) == "1"
    assert state_of(hass, HOME_TODAY) == "1"
    assert [(e.data["room"], e.data["kind"]) for e in fired] == [("Room 1", "motion")]
    last = state_of(hass, ROOM_LAST)

    # Restart: the same bridge state must not be counted again.
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    stored = hass_storage[f"hpoll.{loaded_entry.entry_id}.activity"]["data"]
    assert stored["activity"]["today"][""] == 1
    assert "gaps" in stored["detector"]["history"]
    await poll(hass, freezer)
    assert state_of(hass, HOME_TODAY) == "1"
    assert state_of(hass, ROOM_LAST) == last
    assert len(fired) == 1


async def test_activity_is_unavailable_while_the_bridge_is(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    now = hue_cloud.clock.now()
    hue_cloud.sim.world.bridge_offline(now, now + timedelta(hours=1))
    await poll(hass, freezer)
    assert state_of(hass, HOME_TODAY) == "unavailable"
    assert state_of(hass, ROOM_LAST) == "unavailable"


async def test_low_activity_today_learns_first(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    state = hass.states.get("binary_sensor.hue_bridge_low_activity_today")
    assert state is not None
    assert state.state == "unknown"
    assert state.attributes["learning"] is True


async def test_a_stuck_sensor_is_flagged_and_adds_nothing_across_a_restart(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    motion = "binary_sensor.room_1_device_46_motion"
    # Three hours on one day of the home (the fixture's bridge is in Amsterdam): from 08:00
    # there. Started at the real time, the test failed in the evening, when "today" began
    # again in the middle of it.
    home = ZoneInfo("Europe/Amsterdam")
    now = hue_cloud.clock.now()
    morning = (now.astimezone(home) + timedelta(days=1)).replace(hour=8, minute=0, second=0)
    wait = (morning - now).total_seconds()
    hue_cloud.clock.advance(wait)
    await poll(hass, freezer, wait)
    hue_cloud.sim.world.settle_motion(datetime(2020, 1, 1, tzinfo=UTC))
    hue_cloud.clock.advance(5)
    hue_cloud.sim.world.move(SENSOR_DEVICE, seconds=10 * 3600)  # on, and never off again
    await poll(hass, freezer)
    assert state_of(hass, HOME_TODAY) == "1"
    last = state_of(hass, ROOM_LAST)

    def stuck() -> bool:
        state = hass.states.get(motion)
        assert state is not None
        assert state.state == "on"
        return bool(state.attributes["stuck"])

    assert not stuck()
    for _ in range(3):  # an hour at a time: polls go on, the sensor stays on
        hue_cloud.clock.advance(3600)
        await poll(hass, freezer, 3600)
    assert stuck()
    assert (state_of(hass, HOME_TODAY), state_of(hass, ROOM_LAST)) == ("1", last)

    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    hue_cloud.clock.advance(60)
    await poll(hass, freezer)
    assert stuck()
    assert (state_of(hass, HOME_TODAY), state_of(hass, ROOM_LAST)) == ("1", last)
