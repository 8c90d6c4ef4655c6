"""A bridge of an older firmware generation, through the real Home Assistant harness.

tests/fixtures/clip_v2_older_firmware.json (see tests/fixtures/README.md) has what such bridges
send: buttons with only ``last_event``, a Hue Tap on ``zgp_connectivity``, a motion sensor and a
lamp outside any room (children of ``bridge_home``, the lamp in a zone), tamper reports that were
cleared again, services of a device the listing lacks, and hostile names (a lone surrogate,
control characters, blank, 300 characters, a bidirectional override).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
from typing import Any
import uuid

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.json import json_bytes
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hpoll.activity.report import build_report
from custom_components.hpoll.const import DOMAIN, EVENT_ACTIVITY
from custom_components.hpoll.diagnostics import async_get_config_entry_diagnostics
from huesim import World
from relay.schema import decode_report
from tests.conftest import RunningCloud
from tests.hpoll.helpers import poll, state_of

FIXTURE = Path(__file__).parents[1] / "fixtures" / "clip_v2_older_firmware.json"
NS = uuid.UUID("6f1c7a52-8a1e-4c55-9c39-3f6f0f4f2b10")


def rid(name: str) -> str:
    """Ids in the fixture are uuid5 of a readable name."""
    return str(uuid.uuid5(NS, name))


@pytest.fixture
async def older_entry(
    hass: HomeAssistant,
    credentials: None,
    config_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> MockConfigEntry:
    """The integration set up against a bridge that serves the older-firmware listing."""
    freezer.move_to(hue_cloud.clock.now())
    hue_cloud.sim.world = World(json.loads(FIXTURE.read_text()), hue_cloud.clock)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry


def entity_id(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert found is not None, unique_id
    return found


async def test_last_event_buttons_fire_and_count_as_activity(
    hass: HomeAssistant,
    older_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    fired: list[Event[Any]] = []
    hass.bus.async_listen(EVENT_ACTIVITY, fired.append)
    button = rid("dimmer/b2")
    event = entity_id(hass, "event", f"{rid('dimmer')}_button_{button}")
    today = entity_id(hass, "sensor", f"{older_entry.unique_id}_home_activity_today")
    assert state_of(hass, event) == "unknown"  # what the bridge showed at start is history

    hue_cloud.sim.world.get(button)["button"] = {"last_event": "long_press"}
    await poll(hass, freezer)
    state = hass.states.get(event)
    assert state is not None
    assert state.attributes["event_type"] == "long_press"
    assert [(e.data["kind"], e.data["room"]) for e in fired] == [("button", "Living room")]
    assert state_of(hass, today) == "1"

    await poll(hass, freezer)  # nothing new: no second press
    assert len(fired) == 1
    # Another button, never pressed before (no last_event at all), is pressed.
    hue_cloud.sim.world.get(rid("tap/b3"))["button"] = {"last_event": "initial_press"}
    await poll(hass, freezer)
    assert [e.data["room"] for e in fired] == ["Living room", "Kitchen"]
    assert state_of(hass, today) == "2"


async def test_sensors_outside_rooms_count_for_the_home(
    hass: HomeAssistant,
    older_entry: MockConfigEntry,
    hue_cloud: RunningCloud,
    freezer: FrozenDateTimeFactory,
) -> None:
    own_last = entity_id(hass, "sensor", f"{rid('hall')}_last_activity")
    home_last = entity_id(hass, "sensor", f"{older_entry.unique_id}_home_last_activity")
    home_today = entity_id(hass, "sensor", f"{older_entry.unique_id}_home_activity_today")
    seeded = datetime(2026, 7, 27, 17, 2, 11, tzinfo=UTC)
    assert datetime.fromisoformat(state_of(hass, own_last)) == seeded
    assert datetime.fromisoformat(state_of(hass, home_last)) == seeded

    start = hue_cloud.clock.now() + timedelta(seconds=5)
    hue_cloud.sim.world.move(rid("hall"), start, seconds=3)
    hue_cloud.clock.advance(30)
    await poll(hass, freezer)
    assert state_of(hass, home_today) == "1"
    assert datetime.fromisoformat(state_of(hass, own_last)) > start
    assert datetime.fromisoformat(state_of(hass, home_last)) > start


async def test_areas_connectivity_tamper_and_names(
    hass: HomeAssistant, older_entry: MockConfigEntry
) -> None:
    devices = dr.async_get(hass)
    areas = ar.async_get(hass)

    def device(name: str) -> dr.DeviceEntry:
        found = devices.async_get_device_by_identifier((DOMAIN, rid(name)), older_entry.entry_id)
        assert found is not None, name
        return found

    def area_of(name: str) -> str | None:
        area = areas.async_get_area(device(name).area_id or "")
        return area.name if area else None

    assert area_of("lamp") == "Downstairs"  # no room: its zone
    assert area_of("dimmer") == "Living room"
    assert area_of("door") == "Hall"  # the bidirectional override is gone
    assert area_of("hall") is None  # in no room and no zone

    # Names the registry can save (valid Unicode), shown without control characters.
    for entry in dr.async_entries_for_config_entry(devices, older_entry.entry_id):
        assert entry.name is not None
        entry.name.encode("utf-8")
        assert entry.name.isprintable(), entry.name
    assert device("tap").name == "Kitchen tap [31m"
    assert device("door").name == "Front door \ufffd"
    assert device("lamp").name == "Hue color lamp"  # blank: the product's name
    assert len(device("plug").name or "") <= 64

    # The Hue Tap's Zigbee Green Power link is its connectivity; the lamp's has a problem.
    tap = entity_id(hass, "binary_sensor", f"{rid('tap')}_zigbee_connectivity")
    lamp = entity_id(hass, "binary_sensor", f"{rid('lamp')}_zigbee_connectivity")
    assert (state_of(hass, tap), state_of(hass, lamp)) == ("off", "on")
    # Tampered on the 20th, closed again five minutes later: the newest report decides.
    assert state_of(hass, entity_id(hass, "binary_sensor", f"{rid('door')}_tamper")) == "off"


async def test_orphans_in_diagnostics_and_the_report_passes_the_relay(
    hass: HomeAssistant, older_entry: MockConfigEntry
) -> None:
    diagnostics = await async_get_config_entry_diagnostics(hass, older_entry)
    assert diagnostics["counts"]["skipped_resources"] == 2
    assert sorted(o["rtype"] for o in diagnostics["orphaned_services"]) == [
        "button",
        "device_power",
    ]
    coordinator = older_entry.runtime_data.coordinator
    now = datetime.now(UTC)
    report = build_report(coordinator.data, home_id="h", bridge_name=older_entry.title, now=now)
    decode_report(json_bytes(report), now=now)  # the body the pusher sends
