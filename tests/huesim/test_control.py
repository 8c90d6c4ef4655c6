"""The demo home's names and the simulator's control API, seen through the Hue routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
import pytest

from huesim import HueCloudSimulator, ManualClock, create_app
from huesim.control import add_control_routes
from huesim.home import furnish
from huesim.oauth import OAuthError
from huesim.server import load_fixture
from tests.conftest import APP_KEY, CLIENT_ID, CLIENT_SECRET

WATCHED = ("motion", "device_power", "button", "contact", "relative_rotary", "temperature")


class Home:
    """The furnished simulator with its control API, a client and its Hue credentials."""

    def __init__(self, sim: HueCloudSimulator, clock: ManualClock, session: ClientSession):
        self.sim = sim
        self.clock = clock
        self.session = session
        token = sim.oauth.issue_for_tests(CLIENT_ID)["access_token"]
        self.hue_headers = {"Authorization": f"Bearer {token}", "hue-application-key": APP_KEY}

    async def control(self, path: str, **form: str) -> tuple[int, dict[str, Any]]:
        async with self.session.post(f"/sim/{path}", data=form) as reply:
            return reply.status, await reply.json()

    async def hue(self, path: str = "/route/clip/v2/resource") -> tuple[int, Any]:
        async with self.session.get(path, headers=self.hue_headers) as reply:
            return reply.status, await reply.json()

    def named(self, name: str) -> dict[str, Any]:
        return next(d for d in self.sim.world.of_type("device") if d["metadata"]["name"] == name)

    def service(self, device: str, rtype: str) -> dict[str, Any]:
        service = self.sim.world.service_of(self.named(device)["id"], rtype)
        assert service is not None
        return service


@pytest.fixture
async def home() -> AsyncIterator[Home]:
    clock = ManualClock(datetime(2026, 7, 28, 9, 0, tzinfo=UTC))
    sim = HueCloudSimulator.from_fixture(
        clock, clients={CLIENT_ID: CLIENT_SECRET}, app_keys={APP_KEY}, furnished=True
    )
    app = create_app(sim)
    add_control_routes(app)
    server = TestServer(app, host="127.0.0.1", access_log=None)
    await server.start_server()
    try:
        async with ClientSession(base_url=str(server.make_url(""))) as session:
            yield Home(sim, clock, session)
    finally:
        await server.close()


def test_the_demo_home_reads_like_a_home() -> None:
    raw = load_fixture()
    sim = HueCloudSimulator.from_fixture(furnished=True)
    world = sim.world
    names = [r["metadata"]["name"] for r in world.of_type("device") + world.of_type("room")]
    assert not [n for n in names if n.startswith(("Device ", "Room ", "Zone "))]
    assert len(set(names)) == len(names)
    # Every device hpoll makes entities for is in exactly one room.
    rooms = world.of_type("room")
    for device in world.of_type("device"):
        if any(world.service_of(device["id"], rtype) for rtype in WATCHED):
            homes = [r for r in rooms if {"rid": device["id"], "rtype": "device"} in r["children"]]
            assert len(homes) == 1, device["metadata"]["name"]
    kitchen = next(r for r in rooms if r["metadata"]["name"] == "Kitchen")
    assert kitchen["metadata"]["archetype"] == "kitchen"
    # Only names and rooms change: the same resources, the capture itself untouched.
    assert sorted(r["id"] for r in world.resources()) == sorted(r["id"] for r in raw)
    assert furnish(raw) != raw
    assert raw == load_fixture()


async def test_overview_names_what_can_be_done(home: Home) -> None:
    async with home.session.get("/sim") as reply:
        overview = await reply.json()
    assert overview["rooms_with_motion"] == ["Hallway", "Kitchen", "Living room", "Pantry"]
    assert "Living room dimmer" in overview["buttons"]
    assert overview["doors"] == ["Back door"]
    assert overview["bridge"] == {
        "name": "Hue Bridge",
        "online": True,
        "rate_limited_requests": 0,
        "app_keys": 1,
    }
    assert "POST /sim/bridge/offline" in overview["actions"]


async def test_movement_button_door_and_battery(home: Home) -> None:
    assert await home.control("move", room="kitchen", seconds="5") == (
        200,
        {"done": "movement in front of Kitchen sensor for 5 s"},
    )
    _, body = await home.hue("/route/clip/v2/resource/motion")
    moving = {r["owner"]["rid"] for r in body["data"] if r["motion"]["motion_report"]["motion"]}
    assert home.named("Kitchen sensor")["id"] in moving
    assert home.service("Hallway sensor", "motion")["motion"]["motion_report"]["motion"] is False
    assert (await home.control("move", sensor="Hallway sensor"))[0] == 200
    await home.hue()
    assert home.service("Hallway sensor", "motion")["motion"]["motion_report"]["motion"] is True

    assert (await home.control("press", button="Living room dimmer", event="long_press"))[0] == 200
    await home.hue()
    report = home.service("Living room dimmer", "button")["button"]["button_report"]
    assert report == {"event": "long_press", "updated": "2026-07-28T09:00:00.000Z"}

    assert await home.control("door", state="open") == (200, {"done": "Back door open"})
    await home.hue()
    assert home.service("Back door", "contact")["contact_report"]["state"] == "no_contact"
    await home.control("door", state="closed", name="back door")
    await home.hue()
    assert home.service("Back door", "contact")["contact_report"]["state"] == "contact"

    assert (await home.control("battery", device="Hallway sensor", level="4"))[0] == 404
    assert (await home.control("battery", device="Living room sensor", level="4"))[0] == 200
    await home.hue()
    assert home.service("Living room sensor", "device_power")["power_state"] == {
        "battery_level": 4,
        "battery_state": "critical",
    }


async def test_bridge_offline_until_online(home: Home) -> None:
    assert (await home.control("bridge/offline", status="504"))[0] == 200
    home.clock.advance(3600)
    assert (await home.hue())[0] == 504
    async with home.session.get("/sim") as reply:
        assert (await reply.json())["bridge"]["online"] is False
    assert (await home.control("bridge/online"))[0] == 200
    assert (await home.hue())[0] == 200


async def test_rate_limit_tokens_and_app_key(home: Home) -> None:
    await home.control("rate-limit", requests="1", retry_after="60")
    async with home.session.get("/route/clip/v2/resource", headers=home.hue_headers) as reply:
        assert (reply.status, reply.headers["Retry-After"]) == (429, "60")
    assert (await home.hue())[0] == 200

    await home.control("app-key/forget")
    assert (await home.hue())[0] == 403
    home.sim.app_keys.add(APP_KEY)

    await home.control("tokens/expire")
    status, body = await home.hue()
    assert status == 401
    assert body["fault"]["detail"]["errorcode"] == "keymanagement.service.access_token_expired"
    refresh = str(home.sim.oauth.issue_for_tests(CLIENT_ID)["refresh_token"])
    assert (await home.control("tokens/revoke"))[0] == 200
    with pytest.raises(OAuthError, match="invalid or already used refresh token"):
        home.sim.oauth.refresh(CLIENT_ID, refresh)


@pytest.mark.parametrize(
    ("path", "form", "status", "error"),
    [
        ("move", {"room": "Bathroom"}, 404, "no motion sensor in Bathroom; rooms with one: "),
        ("move", {"room": "Attic"}, 404, "no room named 'Attic'"),
        ("move", {}, 400, "room is required"),
        ("move", {"room": "Kitchen", "seconds": "soon"}, 400, "seconds must be a number"),
        ("move", {"room": "Kitchen", "seconds": "-1"}, 400, "seconds must be between 0 and 3600"),
        ("press", {"button": "Kitchen sensor"}, 404, "Kitchen sensor has no button"),
        ("door", {"state": "ajar"}, 400, "state must be open or closed"),
        ("battery", {"device": "Living room sensor"}, 400, "level is required"),
        ("rate-limit", {"requests": "0"}, 400, "requests must be between 1 and 10000"),
    ],
)
async def test_bad_requests_say_why(
    home: Home, path: str, form: dict[str, str], status: int, error: str
) -> None:
    got_status, body = await home.control(path, **form)
    assert got_status == status
    assert body["error"].startswith(error)
