"""One coordinator refresh (parse + entity updates) in a real Home Assistant instance.

Two bridges: the captured fixture (46 devices) and a synthetic one with 300 battery sensors
(motion, temperature, light level, battery, Zigbee). The bridge is served once by the Hue cloud
simulator to set the entry up; the timed refreshes then parse a pre-decoded payload, so network
time does not blur the figures. Baseline, in the same run: the same refresh with hpoll's
"write only what changed" check switched off, i.e. every entity writing its state on every poll
as a plain CoordinatorEntity does.

Printed JSON keys:
  <bridge>_devices               devices on the bridge ("fixture" or "synthetic300")
  <bridge>_entities              entities hpoll created
  <bridge>_refresh_ms            median refresh time, unchanged poll, milliseconds
  <bridge>_baseline_refresh_ms   the same with every entity writing on every poll
  <bridge>_ratio                 refresh_ms / baseline_refresh_ms (lower is better)
  <bridge>_writes_unchanged      state writes during one unchanged poll (target 0)
  <bridge>_state_changed_unchanged  state_changed events during one unchanged poll (target 0)
  <bridge>_writes_all_motion     state writes when every motion sensor changed at once
  <bridge>_baseline_writes_per_poll  state writes per poll in the baseline
  <bridge>_parse_ms              median time of the parse alone (part of refresh_ms)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
import contextlib
import copy
from datetime import timedelta
import json
import logging
from pathlib import Path
import statistics
import sys
import tempfile
import time
from typing import Any
from unittest.mock import patch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestServer  # noqa: E402

from custom_components.hpoll import const  # noqa: E402
from custom_components.hpoll.entity import HpollEntity  # noqa: E402
from custom_components.hpoll.hue import Snapshot, parse_snapshot  # noqa: E402
from huesim import HueCloudSimulator, ManualClock, OAuthServer, World, create_app  # noqa: E402
from huesim.server import load_fixture  # noqa: E402

ROUNDS = 30
CLIENT = ("bench-client", "bench-secret")
APP_KEY = "bench-app-key"
TEMPLATE_SENSOR = "fb657eb4-38ba-fd3c-7535-d56f4350699f"  # has every sensor service


def synthetic_bridge(devices: int) -> list[dict[str, Any]]:
    """The fixture with ``devices`` extra full motion sensors paired to it."""
    world = World(load_fixture(), ManualClock())
    rooms = [r["id"] for r in world.of_type("room")]
    for number in range(devices):
        world.add_device_like(TEMPLATE_SENSOR, f"Sensor {number:03d}", rooms[number % len(rooms)])
    world.remove_device(TEMPLATE_SENSOR)
    return world.resources()


class ParsingClient:
    """Stands in for HueRemoteClient after setup: parses a cached payload, no network."""

    def __init__(self, resources: list[dict[str, Any]]) -> None:
        self.payload: dict[str, Any] = {"errors": [], "data": resources}

    async def get_resources(self) -> Snapshot:
        return parse_snapshot(self.payload)


@contextlib.contextmanager
def counting_writes() -> Iterator[Callable[[], int]]:
    """Count Entity.async_write_ha_state calls."""
    from homeassistant.helpers.entity import Entity

    calls = 0
    original = Entity.async_write_ha_state

    def counted(self: Entity) -> None:
        nonlocal calls
        calls += 1
        original(self)

    with patch.object(Entity, "async_write_ha_state", counted):
        yield lambda: calls


def _subclasses(cls: type) -> Iterator[type]:
    yield cls
    sub: type
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


@contextlib.contextmanager
def every_entity_writes() -> Iterator[None]:
    """The baseline: no entity ever thinks its state is unchanged."""
    with contextlib.ExitStack() as stack:
        for cls in set(_subclasses(HpollEntity)):
            if "fingerprint" in vars(cls):
                stack.enter_context(patch.object(cls, "fingerprint", lambda self: object()))
        yield


@contextlib.asynccontextmanager
async def running_entry(
    resources: list[dict[str, Any]],
) -> AsyncIterator[tuple[Any, Any, HueCloudSimulator]]:
    """A real HA instance with an hpoll entry set up against a simulated bridge."""
    from homeassistant import loader
    from homeassistant.components.application_credentials import (
        ClientCredential,
        async_import_client_credential,
    )
    from homeassistant.setup import async_setup_component
    from pytest_homeassistant_custom_component.common import (
        MockConfigEntry,
        async_test_home_assistant,
    )

    clock = ManualClock()
    world = World(resources, clock)
    # Nobody moving (the capture froze one sensor mid-movement, which would keep "last
    # activity" changing): an unchanged poll must then change nothing at all.
    world.settle_motion(clock.now() - timedelta(days=30))
    sim = HueCloudSimulator(world, OAuthServer(clock, dict([CLIENT])), {APP_KEY})
    server = TestServer(create_app(sim), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    token = dict(sim.oauth.issue_for_tests(CLIENT[0]))
    token["expires_at"] = time.time() + 3600
    with tempfile.TemporaryDirectory() as config_dir:
        (Path(config_dir) / "custom_components").symlink_to(ROOT / "custom_components")
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            # The harness hides custom integrations unless asked, as its fixture does.
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
            entry = MockConfigEntry(
                domain=const.DOMAIN,
                title="Bench Bridge",
                unique_id=sim.bridge_id,
                data={
                    "auth_implementation": const.DOMAIN,
                    "token": token,
                    const.CONF_APP_KEY: APP_KEY,
                },
            )
            with (
                patch.object(const, "API_BASE_URL", base),
                patch.object(const, "OAUTH2_TOKEN_URL", f"{base}/v2/oauth2/token"),
            ):
                assert await async_setup_component(hass, "application_credentials", {})
                await async_import_client_credential(
                    hass, const.DOMAIN, ClientCredential(*CLIENT), const.DOMAIN
                )
                entry.add_to_hass(hass)
                assert await hass.config_entries.async_setup(entry.entry_id)
                await hass.async_block_till_done()
            yield hass, entry, sim
            await hass.config_entries.async_unload(entry.entry_id)
    await server.close()


async def _median_ms(action: Callable[[], Awaitable[object]]) -> float:
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples) * 1000, 3)


async def measure(name: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Time refreshes of one bridge and count what they write."""
    from homeassistant.const import EVENT_STATE_CHANGED

    result: dict[str, Any] = {}
    async with running_entry(resources) as (hass, entry, sim):
        coordinator = entry.runtime_data.coordinator
        client = ParsingClient(copy.deepcopy(sim.world.resources()))
        coordinator.client = client
        changes: list[object] = []
        hass.bus.async_listen(EVENT_STATE_CHANGED, changes.append)

        await coordinator.async_refresh()  # warm-up
        changes.clear()
        with counting_writes() as writes:
            await coordinator.async_refresh()
            result[f"{name}_writes_unchanged"] = writes()
        result[f"{name}_state_changed_unchanged"] = len(changes)
        result[f"{name}_refresh_ms"] = await _median_ms(coordinator.async_refresh)
        with every_entity_writes(), counting_writes() as writes:
            result[f"{name}_baseline_refresh_ms"] = await _median_ms(coordinator.async_refresh)
            result[f"{name}_baseline_writes_per_poll"] = writes() // ROUNDS
        await coordinator.async_refresh()  # entities remember what they show again
        result[f"{name}_parse_ms"] = await _median_ms(client.get_resources)

        for resource in client.payload["data"]:
            if resource["type"] == "motion":
                report = resource["motion"]["motion_report"]
                report["motion"] = not report["motion"]
        with counting_writes() as writes:
            await coordinator.async_refresh()
            result[f"{name}_writes_all_motion"] = writes()
        result[f"{name}_devices"] = len(coordinator.data.devices)
        result[f"{name}_entities"] = len(hass.states.async_all())
    result[f"{name}_ratio"] = round(
        result[f"{name}_refresh_ms"] / result[f"{name}_baseline_refresh_ms"], 3
    )
    return result


async def main() -> None:
    """Both bridges, one JSON line."""
    from aiohttp.resolver import ThreadedResolver

    logging.basicConfig(level=logging.ERROR)
    figures: dict[str, Any] = {}
    # As the test harness does: plain DNS instead of HA's mDNS-capable resolver (zeroconf).
    with patch(
        "homeassistant.helpers.aiohttp_client._async_make_resolver",
        side_effect=lambda hass: ThreadedResolver(),
    ):
        figures |= await measure("fixture", load_fixture())
        figures |= await measure("synthetic300", synthetic_bridge(300))
    for name in ("fixture", "synthetic300"):
        print(
            f"{name:13s} {figures[f'{name}_devices']:4d} devices "
            f"{figures[f'{name}_entities']:5d} entities: refresh "
            f"{figures[f'{name}_refresh_ms']:7.2f} ms (every entity writing: "
            f"{figures[f'{name}_baseline_refresh_ms']:7.2f} ms), writes on an unchanged poll: "
            f"{figures[f'{name}_writes_unchanged']}"
        )
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main())
