"""End to end: a real ``hass`` process, set up the way a new user does, against the simulator.

Run on its own (``scripts/test``): ``pytest tests/e2e -p no:homeassistant``. Home Assistant runs
in its own environment (:func:`huesim.live.ensure_environment`), hpoll is added through the
config flow and its options over HTTP, a fault is injected through the simulator's control API,
and Chromium takes screenshots of the device pages (kept in ``test-artifacts/e2e``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import json
import os
from pathlib import Path
import subprocess
import time
from typing import Any

from aiohttp import ClientSession
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from huesim.demo import create_demo_home
from huesim.ha_client import Json, expect
from huesim.live import LiveHome, ensure_environment
from relay.cli import main as relay_cli
from tests.relay.relay_process import RelayProcess, free_port

REPOSITORY = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = Path(os.environ.get("HPOLL_E2E_ARTIFACTS", REPOSITORY / "test-artifacts" / "e2e"))
#: Collects the visible text of a page, through the frontend's shadow roots.
DEEP_TEXT = """
const parts = [];
const walk = (node) => {
  if (node.shadowRoot) walk(node.shadowRoot);
  for (const child of node.children || []) walk(child);
  if (node.nodeType === 1 && node.childElementCount === 0 && node.textContent) {
    parts.push(node.textContent.trim());
  }
};
walk(document.documentElement);
return parts.join("\\n");
"""


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[tuple[RelayProcess, str]]:
    """A real relay process with the demo home; yields it and the home's token."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    assert await asyncio.to_thread(relay_cli, ["--db", db, "db", "upgrade"]) == 0
    token = await create_demo_home(db, free_port())
    process = RelayProcess(db, HPOLL_RELAY_NOTIFY_SECONDS="0")
    await process.start()
    try:
        yield process, token
    finally:
        await process.stop()


@pytest.fixture
async def live(tmp_path: Path, relay: tuple[RelayProcess, str]) -> AsyncIterator[LiveHome]:
    python = await asyncio.to_thread(ensure_environment)
    process, token = relay
    async with LiveHome(
        python,
        tmp_path / "ha-config",
        ha_port=free_port(),
        sim_port=free_port(),
        relay_url=process.url,
        relay_token=token,
        lively=False,
    ) as home:
        yield home
    log = await asyncio.to_thread((tmp_path / "ha-config" / "home-assistant.log").read_text)
    await asyncio.to_thread(_keep, "home-assistant.log", log)
    # Each injected fault is reported once (HA's coordinator words it); nothing else went wrong.
    hpoll_errors = [
        line.split("] ", 1)[1]
        for line in log.splitlines()
        if "ERROR" in line and "custom_components.hpoll" in line
    ]
    assert len(hpoll_errors) == 2, hpoll_errors
    assert hpoll_errors[0].startswith("Error fetching hpoll Hue Bridge data: ")
    assert hpoll_errors[1].startswith("Authentication failed while fetching hpoll Hue Bridge data")


async def until(check: Callable[[], Awaitable[Any]], poke: Callable[[], Awaitable[None]]) -> Any:
    """Poke (ask for a poll) and look again until ``check`` returns something truthy (60 s)."""
    async with asyncio.timeout(60):
        while not (result := await check()):
            await poke()
            await asyncio.sleep(1)
    return result


async def test_a_new_user_sets_up_hpoll_and_sees_a_fault_heal(
    live: LiveHome, relay: tuple[RelayProcess, str]
) -> None:
    ha = live.ha
    entries = await ha.request("GET", "/api/config/config_entries/entry?domain=hpoll")
    assert [(e["title"], e["state"]) for e in entries] == [("Hue Bridge", "loaded")]
    entities = {e["entity_id"]: e for e in await ha.entities("hpoll")}
    devices = {d["name"]: d for d in await ha.devices(live.entry_id)}
    assert {"Hue Bridge", "Hallway sensor", "Living room dimmer", "Back door"} <= set(devices)

    states = {s["entity_id"]: s for s in await ha.states()}

    def entity(device: str, platform: str, kind: str) -> str:
        """The entity of a device by its translation key or, failing that, device class."""
        (entity_id,) = (
            e["entity_id"]
            for e in entities.values()
            if e["device_id"] == devices[device]["id"]
            and e["entity_id"].startswith(f"{platform}.")
            and kind
            in (e["translation_key"], states[e["entity_id"]]["attributes"].get("device_class"))
        )
        return str(entity_id)

    cloud = entity("Hue Bridge", "binary_sensor", "cloud_connection")
    motion = entity("Hallway sensor", "binary_sensor", "motion")
    assert (await ha.state(cloud))["state"] == "on"
    assert (await ha.state(entity("Hue Bridge", "binary_sensor", "relay_connection")))[
        "state"
    ] == "on"
    assert (await ha.state(motion))["state"] == "off"
    # The captured home's tap dial runs on its last 3 %.
    assert (await ha.state(entity("Armchair dial", "sensor", "battery")))["state"] == "3"

    async def poll() -> None:
        await ha.update_entity(cloud)

    async def sim(path: str, **form: str) -> None:
        async with (
            ClientSession() as session,
            session.post(f"{live.sim_url}/sim/{path}", data=form) as reply,
        ):
            assert reply.status == 200, await reply.text()

    # Someone walks into the hallway: the motion sensor says so at the next poll.
    await sim("move", room="Hallway", seconds="60")
    await until(lambda: _state_is(ha, motion, "on"), poll)

    # The bridge drops off the internet: Cloud connection goes off and says why, device
    # entities become unavailable (never a stale "all is well") ... and all heals.
    await sim("bridge/offline")
    offline = await until(lambda: _state_is(ha, cloud, "off"), poll)
    assert offline["attributes"]["problem"] == "bridge_offline"
    assert (await ha.state(motion))["state"] == "unavailable"
    await sim("bridge/online")
    await until(lambda: _state_is(ha, cloud, "on"), poll)
    assert (await ha.state(motion))["state"] in ("on", "off")

    # Hue revokes the sign-in: Home Assistant asks to re-authenticate; the user does.
    await sim("tokens/revoke")
    reauth = await until(lambda: ha.flows_in_progress("hpoll"), poll)
    assert [flow["context"]["source"] for flow in reauth] == ["reauth"]
    assert (await ha.state(cloud))["attributes"]["problem"] == "authentication"
    confirm = await ha.flow_step(reauth[0], {})
    done = await ha.sign_in_externally(expect(confirm, "external", "auth"))
    assert (done["type"], done["reason"]) == ("abort", "reauth_successful")
    await until(lambda: _state_is(ha, cloud, "on"), poll)

    # The home's reports reached the relay, with the demo home's names.
    process, token = relay
    async with ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async with session.get(f"{process.url}/api/v1/home") as reply:
            home_id = (await reply.json())["id"]

        async def reported() -> Json | None:
            async with session.get(f"{process.url}/api/v1/homes/{home_id}") as reply:
                status: Json = await reply.json()
            return status if status["last_report_at"] else None

        status = await until(reported, _nothing)
    rooms = {d["name"]: d["room"] for d in status["devices"]}
    assert rooms["Armchair dial"] == "Living room"

    # What a person sees: the bridge's device page and a motion sensor's page.
    shots = await asyncio.to_thread(
        _screenshots,
        live,
        {
            "bridge": devices["Hue Bridge"]["id"],
            "motion-sensor": devices["Hallway sensor"]["id"],
        },
        {"bridge": "Cloud connection", "motion-sensor": "Motion"},
    )
    for shot in shots:
        assert shot.stat().st_size > 20_000


async def _nothing() -> None:
    """Reports go out on their own."""


async def _state_is(ha: Any, entity_id: str, state: str) -> Json | None:
    current: Json = await ha.state(entity_id)
    return current if current["state"] == state else None


def _keep(name: str, text: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_text(text)


def _browser() -> webdriver.Chrome:
    script = REPOSITORY / "scripts" / "ensure-browser.sh"
    subprocess.run(["/bin/bash", str(script)], check=True)  # noqa: S603 - our own script
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def _screenshots(live: LiveHome, pages: dict[str, str], expect: dict[str, str]) -> list[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver = _browser()
    try:
        # Signed in as the frontend itself would be after the login page.
        driver.get(f"{live.ha_url}/auth/authorize")
        driver.execute_script(
            "localStorage.setItem('hassTokens', arguments[0]);",
            json.dumps(live.ha.browser_tokens()),
        )
        shots = []
        for name, device_id in pages.items():
            driver.get(f"{live.ha_url}/config/devices/device/{device_id}")
            _wait_for_text(driver, expect[name])
            path = ARTIFACTS / f"{name}.png"
            driver.save_screenshot(str(path))
            shots.append(path)
        return shots
    finally:
        driver.quit()


def _wait_for_text(driver: webdriver.Chrome, text: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        page = driver.execute_script(DEEP_TEXT)
        if text in page:
            time.sleep(1)  # let the last cards settle
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never appeared; the page said:\n{page[:2000]}")
        time.sleep(0.5)
