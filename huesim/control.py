"""The simulator's control API: change the simulated home while something polls it.

Served under ``/sim`` next to the Hue routes when the simulator runs for people (``python -m
huesim``, the demos), never part of what the real Hue cloud answers. Parameters come as a form
or a query string; names are matched without regard to case. :func:`usage` lists the calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from .server import SIMULATOR_KEY, HueCloudSimulator
from .world import Resource

type Params = Mapping[str, str]
type Action = Callable[[HueCloudSimulator, Params], str]

CONTACT_STATES = {"open": "no_contact", "closed": "contact"}


class ControlError(Exception):
    """A request the control API cannot carry out: answered 400/404 with this text."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def usage(base_url: str) -> list[str]:
    """Ready-to-paste ``curl`` lines for a simulator at ``base_url``."""
    sim = f"{base_url}/sim"
    return [
        f"curl {sim}                                   # the home and what can be done",
        f"curl -d room=Kitchen {sim}/move              # someone walks into the kitchen",
        f"curl -d 'button=Living room dimmer' {sim}/press",
        f"curl -d state=open {sim}/door                # the back door opens (state=closed)",
        f"curl -d 'device=Living room sensor' -d level=4 {sim}/battery",
        f"curl -X POST {sim}/bridge/offline            # and {sim}/bridge/online",
        f"curl -d requests=5 -d retry_after=60 {sim}/rate-limit",
        f"curl -X POST {sim}/tokens/expire             # or tokens/revoke: sign in again",
        f"curl -X POST {sim}/app-key/forget            # the bridge forgets hpoll: link again",
    ]


def add_control_routes(app: web.Application) -> None:
    """Serve the control API on ``app`` (a simulator app from :func:`create_app`)."""
    app.router.add_get("/sim", _overview)
    for path, action in ACTIONS.items():
        app.router.add_post(f"/sim/{path}", _handler(action))


def _handler(action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        params = {**request.query, **{k: str(v) for k, v in (await request.post()).items()}}
        try:
            done = action(request.app[SIMULATOR_KEY], params)
        except ControlError as err:
            return web.json_response({"error": str(err)}, status=err.status)
        return web.json_response({"done": done})

    return handle


async def _overview(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR_KEY]
    world = sim.world
    now = world.sync()
    return web.json_response(
        {
            "bridge": {
                "name": sim.bridge_name,
                "online": world.offline_status(now) is None,
                "rate_limited_requests": world.rate_limited_requests,
                "app_keys": len(sim.app_keys),
            },
            "rooms_with_motion": sorted(_rooms_with_motion(sim)),
            "buttons": sorted(_name(d) for d in _devices_with(sim, "button")),
            "doors": sorted(_name(d) for d in _devices_with(sim, "contact")),
            "battery_devices": sorted(_name(d) for d in _devices_with(sim, "device_power")),
            "actions": sorted(f"POST /sim/{path}" for path in ACTIONS),
        }
    )


# -- the actions -------------------------------------------------------------------------------


def _move(sim: HueCloudSimulator, params: Params) -> str:
    seconds = _number(params, "seconds", 20.0, 0, 3600)
    if "sensor" in params:
        device = _device(sim, params["sensor"], "motion")
    else:
        room = _one(sim, "room", _required(params, "room"))
        candidates = [d for d in _devices_with(sim, "motion") if d["id"] in _children(room)]
        if not candidates:
            raise ControlError(
                f"no motion sensor in {_name(room)}; rooms with one: "
                + ", ".join(sorted(_rooms_with_motion(sim))),
                404,
            )
        device = candidates[0]
    sim.world.move(device["id"], seconds=seconds)
    return f"movement in front of {_name(device)} for {seconds:g} s"


def _press(sim: HueCloudSimulator, params: Params) -> str:
    device = _device(sim, _required(params, "button"), "button")
    event = params.get("event", "short_release")
    button = sim.world.service_of(device["id"], "button")
    assert button is not None  # _device checked it
    sim.world.press_button(button["id"], event)
    return f"{_name(device)}: {event}"


def _door(sim: HueCloudSimulator, params: Params) -> str:
    state = _required(params, "state").lower()
    if state not in CONTACT_STATES:
        raise ControlError("state must be open or closed")
    doors = _devices_with(sim, "contact")
    device = _device(sim, params["name"], "contact") if "name" in params else doors[0]
    contact = sim.world.service_of(device["id"], "contact")
    assert contact is not None
    sim.world.set_contact(contact["id"], CONTACT_STATES[state])
    return f"{_name(device)} {state}"


def _battery(sim: HueCloudSimulator, params: Params) -> str:
    device = _device(sim, _required(params, "device"), "device_power")
    level = int(_number(params, "level", None, 0, 100))
    sim.world.set_battery(device["id"], level)
    return f"{_name(device)} battery at {level} %"


def _offline(sim: HueCloudSimulator, params: Params) -> str:
    status = int(_number(params, "status", 503, 500, 599))
    sim.world.take_offline(status)
    return f"bridge offline (the cloud answers {status})"


def _online(sim: HueCloudSimulator, _params: Params) -> str:
    sim.world.bring_online()
    return "bridge online"


def _rate_limit(sim: HueCloudSimulator, params: Params) -> str:
    requests = int(_number(params, "requests", 5, 1, 10_000))
    retry_after = params.get("retry_after")
    sim.world.rate_limit(
        requests, int(_number(params, "retry_after", None, 0, 86_400)) if retry_after else None
    )
    return f"the next {requests} resource requests answer 429"


def _expire_tokens(sim: HueCloudSimulator, _params: Params) -> str:
    sim.oauth.expire_access_tokens()
    return "access tokens expired (refresh tokens still work)"


def _revoke_tokens(sim: HueCloudSimulator, _params: Params) -> str:
    sim.oauth.revoke_all()
    return "every access and refresh token revoked: sign in again"


def _forget_app_key(sim: HueCloudSimulator, _params: Params) -> str:
    sim.app_keys.clear()
    return "the bridge forgot every application key: link again"


ACTIONS: dict[str, Action] = {
    "move": _move,
    "press": _press,
    "door": _door,
    "battery": _battery,
    "bridge/offline": _offline,
    "bridge/online": _online,
    "rate-limit": _rate_limit,
    "tokens/expire": _expire_tokens,
    "tokens/revoke": _revoke_tokens,
    "app-key/forget": _forget_app_key,
}


# -- finding things by name --------------------------------------------------------------------


def _name(resource: Resource) -> str:
    return str(resource.get("metadata", {}).get("name", resource["id"]))


def _children(group: Resource) -> set[str]:
    return {c["rid"] for c in group.get("children", []) if c["rtype"] == "device"}


def _devices_with(sim: HueCloudSimulator, rtype: str) -> list[Resource]:
    return [d for d in sim.world.of_type("device") if sim.world.service_of(d["id"], rtype)]


def _rooms_with_motion(sim: HueCloudSimulator) -> list[str]:
    sensors = {d["id"] for d in _devices_with(sim, "motion")}
    return [_name(r) for r in sim.world.of_type("room") if _children(r) & sensors]


def _one(sim: HueCloudSimulator, rtype: str, name: str) -> Resource:
    for resource in sim.world.of_type(rtype):
        if _name(resource).casefold() == name.casefold():
            return resource
    raise ControlError(f"no {rtype} named {name!r}", 404)


def _device(sim: HueCloudSimulator, name: str, service: str) -> Resource:
    device = _one(sim, "device", name)
    if sim.world.service_of(device["id"], service) is None:
        raise ControlError(f"{_name(device)} has no {service}", 404)
    return device


def _required(params: Params, key: str) -> str:
    if not params.get(key):
        raise ControlError(f"{key} is required")
    return params[key]


def _number(params: Params, key: str, default: float | None, low: float, high: float) -> float:
    raw = params.get(key)
    if raw is None:
        if default is None:
            raise ControlError(f"{key} is required")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ControlError(f"{key} must be a number") from None
    if not low <= value <= high:
        raise ControlError(f"{key} must be between {low:g} and {high:g}")
    return value
