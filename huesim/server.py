"""The HTTP face of the simulated Hue cloud: the routes hpoll calls, with Hue's answers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import json
from pathlib import Path
import secrets
from typing import Any

from aiohttp import web
from yarl import URL

from .clock import Clock, SystemClock
from .home import furnish
from .oauth import OAuthError, OAuthServer
from .world import World

DEFAULT_FIXTURE = Path(__file__).resolve().parent.parent / "tests/fixtures/clip_v2_resources.json"
#: The virtual link-button press keeps the bridge open for new keys this long.
LINK_WINDOW_SECONDS = 30

SIMULATOR_KEY: web.AppKey[HueCloudSimulator] = web.AppKey("simulator")


def load_fixture(path: Path = DEFAULT_FIXTURE) -> list[dict[str, Any]]:
    """A captured resource listing: either the bare list or the ``{"data": [...]}`` envelope."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    data = payload["data"] if isinstance(payload, dict) else payload
    if not isinstance(data, list):
        raise TypeError(f"{path} holds no resource list")
    return data


@dataclass
class HueCloudSimulator:
    """World + OAuth + bridge link state: everything one simulated account/bridge holds."""

    world: World
    oauth: OAuthServer
    app_keys: set[str] = field(default_factory=set)
    bridge_name: str = "Hue Bridge"
    #: False makes the bridge refuse new keys as if the press never reached it.
    link_button_works: bool = True
    link_open_until: datetime | None = None
    requests: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_fixture(
        cls,
        clock: Clock | None = None,
        fixture: Path = DEFAULT_FIXTURE,
        clients: dict[str, str] | None = None,
        app_keys: set[str] | None = None,
        *,
        furnished: bool = False,
    ) -> HueCloudSimulator:
        """A simulator serving a captured bridge, or (``furnished``) the demo home: named rooms
        and devices, and nobody moving when it starts (the capture froze one sensor mid-move)."""
        clock = clock or SystemClock()
        resources = load_fixture(fixture)
        world = World(furnish(resources) if furnished else resources, clock)
        if furnished:
            world.settle_motion()
        return cls(
            world=world,
            oauth=OAuthServer(clock, clients),
            app_keys=set(app_keys or ()),
        )

    @property
    def bridge_id(self) -> str:
        """The bridge's id as CLIP v2 spells it (lower-case)."""
        return str(self.world.of_type("bridge")[0]["bridge_id"]).lower()


def create_app(sim: HueCloudSimulator) -> web.Application:
    """An aiohttp application answering like ``https://api.meethue.com``."""
    app = web.Application(middlewares=[_count_requests])
    app[SIMULATOR_KEY] = sim
    app.router.add_get("/v2/oauth2/authorize", _authorize)
    app.router.add_post("/v2/oauth2/token", _token)
    app.router.add_get("/route/api/0/config", _get_config)
    app.router.add_put("/route/api/0/config", _press_link_button)
    app.router.add_post("/route/api", _create_app_key)
    app.router.add_get("/route/clip/v2/resource", _resources)
    app.router.add_get("/route/clip/v2/resource/{rtype}", _resources)
    app.router.add_get("/route/clip/v2/resource/{rtype}/{rid}", _resources)
    app.router.add_get("/route/clip/v2/eventstream", _eventstream)
    return app


@web.middleware
async def _count_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    request.app[SIMULATOR_KEY].requests[f"{request.method} {request.path}"] += 1
    response: web.StreamResponse = await handler(request)
    return response


async def _authorize(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIMULATOR_KEY]
    query = request.query
    redirect_uri = query.get("redirect_uri")
    if query.get("response_type") != "code" or not redirect_uri:
        return web.json_response({"error": "invalid_request"}, status=400)
    try:
        code = sim.oauth.authorize(query.get("client_id", ""), redirect_uri)
    except OAuthError as err:
        return web.json_response({"error": err.error}, status=err.status)
    location = URL(redirect_uri).update_query(code=code, state=query.get("state", ""))
    raise web.HTTPFound(location)


async def _token(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR_KEY]
    form = await request.post()
    try:
        tokens = _grant(sim.oauth, request.headers.get("Authorization"), form)
    except OAuthError as err:
        return web.json_response(
            {"error": err.error, "error_description": err.description}, status=err.status
        )
    return web.json_response(tokens)


def _grant(
    oauth: OAuthServer, authorization: str | None, form: Mapping[str, Any]
) -> dict[str, Any]:
    client_id = oauth.client_from_basic(authorization)
    match form.get("grant_type"):
        case "authorization_code":
            redirect = form.get("redirect_uri")
            return oauth.exchange_code(
                client_id, str(form.get("code", "")), str(redirect) if redirect else None
            )
        case "refresh_token":
            return oauth.refresh(client_id, str(form.get("refresh_token", "")))
    raise OAuthError(400, "unsupported_grant_type", "unsupported grant_type")


def _fault(code: str, status: int = 401) -> web.Response:
    """An Apigee-style fault, as Hue's gateway sends for token problems."""
    return web.json_response(
        {"fault": {"faultstring": "Invalid Access Token", "detail": {"errorcode": code}}},
        status=status,
    )


def _check_bearer(request: web.Request) -> web.Response | None:
    sim = request.app[SIMULATOR_KEY]
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return _fault("oauth.v2.InvalidAccessToken")
    problem = sim.oauth.check_access(header[7:])
    return _fault(problem) if problem else None


def _offline(sim: HueCloudSimulator) -> web.Response | None:
    status = sim.world.offline_status(sim.world.sync())
    if status is None:
        return None
    return web.json_response(
        {"errors": [{"description": "bridge is not connected"}], "data": []}, status=status
    )


async def _get_config(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR_KEY]
    if (denied := _check_bearer(request) or _offline(sim)) is not None:
        return denied
    return web.json_response(
        {
            "name": sim.bridge_name,
            "datastoreversion": "172",
            "swversion": "1972004020",
            "apiversion": "1.72.0",
            "mac": "00:17:88:00:00:00",
            "bridgeid": sim.bridge_id.upper(),
            "factorynew": False,
            "replacesbridgeid": None,
            "modelid": "BSB002",
            "starterkitid": "",
        }
    )


async def _press_link_button(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR_KEY]
    if (denied := _check_bearer(request) or _offline(sim)) is not None:
        return denied
    body = await _json_body(request)
    if not isinstance(body, dict) or body.get("linkbutton") is not True:
        return web.json_response(
            [
                {
                    "error": {
                        "type": 2,
                        "address": "/config",
                        "description": "body contains invalid JSON",
                    }
                }
            ]
        )
    if sim.link_button_works:
        sim.link_open_until = sim.world.clock.now() + timedelta(seconds=LINK_WINDOW_SECONDS)
    return web.json_response([{"success": {"/config/linkbutton": True}}])


async def _create_app_key(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR_KEY]
    if (denied := _check_bearer(request) or _offline(sim)) is not None:
        return denied
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("devicetype"), str):
        return web.json_response(
            [
                {
                    "error": {
                        "type": 5,
                        "address": "/",
                        "description": "invalid/missing parameters in body",
                    }
                }
            ]
        )
    if sim.link_open_until is None or sim.world.clock.now() >= sim.link_open_until:
        return web.json_response(
            [{"error": {"type": 101, "address": "", "description": "link button not pressed"}}]
        )
    key = secrets.token_hex(20)
    sim.app_keys.add(key)
    return web.json_response([{"success": {"username": key}}])


async def _resources(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR_KEY]
    if (denied := _check_bearer(request)) is not None:
        return denied
    if request.headers.get("hue-application-key") not in sim.app_keys:
        return web.json_response(
            {"errors": [{"description": "unauthorized user"}], "data": []}, status=403
        )
    world = sim.world
    if world.rate_limited_requests > 0:
        world.rate_limited_requests -= 1
        headers = {}
        if world.rate_limit_retry_after is not None:
            headers["Retry-After"] = str(world.rate_limit_retry_after)
        return web.json_response(
            {
                "fault": {
                    "faultstring": "Rate limit quota violation",
                    "detail": {"errorcode": "policies.ratelimit.QuotaViolation"},
                }
            },
            status=429,
            headers=headers,
        )
    if (offline := _offline(sim)) is not None:
        return offline
    data = world.resources(request.match_info.get("rtype"))
    if rid := request.match_info.get("rid"):
        data = [r for r in data if r["id"] == rid]
        if not data:
            return web.json_response(
                {"errors": [{"description": "Not Found"}], "data": []}, status=404
            )
    return web.json_response({"errors": [], "data": data})


async def _eventstream(request: web.Request) -> web.Response:
    # What the real remote route answers: the event stream is not offered through the cloud.
    return web.json_response(
        {"errors": [{"description": "not yet released on the remote API"}]}, status=404
    )


async def _json_body(request: web.Request) -> object:
    try:
        return await request.json()
    except ValueError:
        return None
