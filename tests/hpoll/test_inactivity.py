"""Inactivity in Home Assistant: the detector's verdict (here its safety net: a fixed threshold
outside quiet hours); away after a door; unknown, never 'inactive', when blind."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hpoll.activity.detector import in_quiet_hours
from custom_components.hpoll.const import EVENT_INACTIVITY_ENDED, EVENT_INACTIVITY_STARTED
from tests.conftest import RunningCloud
from tests.hpoll.helpers import poll, setup_with_options

INACTIVE = "binary_sensor.hue_bridge_inactive"
SENSOR_DEVICE = "7bd86197-ef7c-7625-3170-1b6de1502441"
CONTACT = "1c81d201-23f1-db39-9762-4eafb6397464"
#: Inactive after half an hour, no quiet hours: the tests do not depend on the time of day.
ALWAYS_AWAKE_HALF_HOUR = {
    "inactivity_hours": 0.5,
    "quiet_start": "00:00:00",
    "quiet_end": "00:00:00",
}


@pytest.mark.parametrize(
    ("local", "start", "end", "quiet"),
    [
        ("23:30", "22:00", "07:00", True),
        ("06:59", "22:00", "07:00", True),
        ("07:00", "22:00", "07:00", False),
        ("21:59", "22:00", "07:00", False),
        ("13:00", "12:00", "14:00", True),
        ("14:00", "12:00", "14:00", False),
        ("13:00", "00:00", "00:00", False),
    ],
)
def test_quiet_hours(local: str, start: str, end: str, quiet: bool) -> None:
    clock = time.fromisoformat(local)
    assert in_quiet_hours(clock, time.fromisoformat(start), time.fromisoformat(end)) is quiet


async def test_inactive_turns_on_and_off_with_events(
    hass: HomeAssistant,
    credentials: None,
    config_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    hue_cloud.sim.world.settle_motion(datetime(2020, 1, 1, tzinfo=UTC))
    await setup_with_options(hass, config_entry, ALWAYS_AWAKE_HALF_HOUR)
    events: list[Event[Any]] = []
    hass.bus.async_listen(EVENT_INACTIVITY_STARTED, events.append)
    hass.bus.async_listen(EVENT_INACTIVITY_ENDED, events.append)
    # The newest activity the bridge knows is the capture's: long ago, so inactive already.
    state = hass.states.get(INACTIVE)
    assert state is not None
    assert state.state == "on"
    assert state.attributes["threshold_hours"] == 0.5
    assert (state.attributes["reason"], state.attributes["learning"]) == ("safety_net", True)

    hue_cloud.sim.world.move(SENSOR_DEVICE)
    hue_cloud.clock.advance(30)
    await poll(hass, freezer)
    assert hass.states.get(INACTIVE).state == "off"  # type: ignore[union-attr]
    assert [e.event_type for e in events] == [EVENT_INACTIVITY_ENDED]

    for _ in range(30):
        await poll(hass, freezer)
    assert hass.states.get(INACTIVE).state == "on"  # type: ignore[union-attr]
    assert [e.event_type for e in events] == [EVENT_INACTIVITY_ENDED, EVENT_INACTIVITY_STARTED]

    # Leaving through the front door: silence after that is "away", not "inactive".
    hue_cloud.clock.advance(60)
    hue_cloud.sim.world.set_contact(CONTACT, "no_contact")
    await poll(hass, freezer)
    state = hass.states.get(INACTIVE)
    assert state is not None
    assert (state.state, state.attributes["away"]) == ("off", True)
    for _ in range(31):
        await poll(hass, freezer)
    assert hass.states.get(INACTIVE).state == "off"  # type: ignore[union-attr]

    now = hue_cloud.clock.now()
    hue_cloud.sim.world.bridge_offline(now, now + timedelta(hours=1))
    await poll(hass, freezer)
    assert hass.states.get(INACTIVE).state == "unavailable"  # type: ignore[union-attr]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_room_inactivity_follows_the_room(
    hass: HomeAssistant,
    credentials: None,
    config_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    hue_cloud.sim.world.settle_motion(datetime(2020, 1, 1, tzinfo=UTC))
    await setup_with_options(hass, config_entry, ALWAYS_AWAKE_HALF_HOUR)
    room = "binary_sensor.room_1_inactive"
    other = "binary_sensor.room_10_inactive"
    hue_cloud.sim.world.move(SENSOR_DEVICE)  # in Room 1
    hue_cloud.clock.advance(30)
    await poll(hass, freezer)
    assert hass.states.get(room).state == "off"  # type: ignore[union-attr]
    assert hass.states.get(other).state == "on"  # type: ignore[union-attr]
    for _ in range(31):
        await poll(hass, freezer)
    assert hass.states.get(room).state == "on"  # type: ignore[union-attr]
