"""The scriptable world behind the simulated Hue cloud.

State is kept as raw CLIP v2 resource dicts, exactly as the bridge would serve them, and changed by
timed events. Events are applied lazily, in time order, whenever the world is read, so a test can
schedule a day of activity up front and poll it with a manual clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import heapq
import itertools
from typing import Any
import uuid

from .clock import Clock

type Resource = dict[str, Any]

MOTION_TYPES = frozenset(
    {
        "motion",
        "camera_motion",
        "grouped_motion",
        "convenience_area_motion",
        "security_area_motion",
    }
)

#: A Hue motion sensor reports "no motion" this long after movement stops.
MOTION_HOLD_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class MotionEvent:
    """Ground truth: someone moved in front of ``sensor_id`` from ``start`` to ``end``."""

    sensor_id: str
    start: datetime
    end: datetime


@dataclass(slots=True)
class _Outage:
    start: datetime
    end: datetime
    status: int


def hue_time(when: datetime) -> str:
    """Format like the bridge: UTC, milliseconds, ``Z``."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class World:
    """Resources plus the timeline that changes them."""

    def __init__(self, resources: Iterable[Resource], clock: Clock) -> None:
        self.clock = clock
        self._resources: dict[str, Resource] = {r["id"]: copy.deepcopy(r) for r in resources}
        self._timeline: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self._sequence = itertools.count()
        self._motion_until: dict[str, datetime] = {}
        self._outages: list[_Outage] = []
        self.movements: list[MotionEvent] = []
        self.rate_limited_requests = 0
        self.rate_limit_retry_after: int | None = None

    # -- reading -------------------------------------------------------------------------------

    def sync(self) -> datetime:
        """Apply every event due by now; return now."""
        now = self.clock.now()
        while self._timeline and self._timeline[0][0] <= now:
            when, _, apply = heapq.heappop(self._timeline)
            apply(when)
        return now

    def resources(self, rtype: str | None = None) -> list[Resource]:
        """Current resources, optionally of one type."""
        self.sync()
        if rtype is None:
            return list(self._resources.values())
        return [r for r in self._resources.values() if r["type"] == rtype]

    def get(self, rid: str) -> Resource:
        """One resource by id (KeyError if unknown)."""
        return self._resources[rid]

    def of_type(self, rtype: str) -> list[Resource]:
        """Resources of a type, without applying pending events (for setting up scripts)."""
        return [r for r in self._resources.values() if r["type"] == rtype]

    def service_of(self, device_id: str, rtype: str) -> Resource | None:
        """The device's first service of a type."""
        for ref in self._resources[device_id].get("services", []):
            if ref["rtype"] == rtype and ref["rid"] in self._resources:
                return self._resources[ref["rid"]]
        return None

    def offline_status(self, now: datetime) -> int | None:
        """The HTTP status the cloud answers while the bridge is unreachable, else None."""
        for outage in self._outages:
            if outage.start <= now < outage.end:
                return outage.status
        return None

    # -- scripting -----------------------------------------------------------------------------

    def at(self, when: datetime | None, apply: Callable[[datetime], None]) -> None:
        """Run ``apply(when)`` once the clock reaches ``when`` (now if None)."""
        heapq.heappush(self._timeline, (when or self.clock.now(), next(self._sequence), apply))

    def move(self, sensor: str, start: datetime | None = None, seconds: float = 0.0) -> None:
        """Movement in front of a motion sensor (service or device id) for ``seconds``."""
        sensor_id = self._motion_id(sensor)
        begin = start or self.clock.now()
        end = begin + timedelta(seconds=seconds)
        self.movements.append(MotionEvent(sensor_id, begin, end))
        self.at(begin, lambda when: self._motion_starts(sensor_id, when, end))

    def set_battery(
        self, device: str, level: int | None, state: str | None = None, at: datetime | None = None
    ) -> None:
        """Set a battery level; the state follows the level unless given."""
        power = self._service(device, "device_power")

        def apply(_when: datetime) -> None:
            derived = state or (
                "normal" if level is None or level > 15 else "low" if level > 5 else "critical"
            )
            power["power_state"] = {"battery_level": level, "battery_state": derived}

        self.at(at, apply)

    def set_connectivity(self, device: str, status: str, at: datetime | None = None) -> None:
        """A device drops off (or rejoins) the Zigbee mesh."""
        zigbee = self._service(device, "zigbee_connectivity")
        self.at(at, lambda _when: zigbee.__setitem__("status", status))

    def press_button(
        self, button_id: str, event: str = "short_release", at: datetime | None = None
    ) -> None:
        """A button event, reported with its time."""
        button = self._resources[button_id]

        def apply(when: datetime) -> None:
            block = button.setdefault("button", {})
            block["button_report"] = {"event": event, "updated": hue_time(when)}
            block["last_event"] = event

        self.at(at, apply)

    def set_contact(self, contact_id: str, state: str, at: datetime | None = None) -> None:
        """A door/window contact opens (``no_contact``) or closes (``contact``)."""
        contact = self._resources[contact_id]
        self.at(
            at,
            lambda when: contact.__setitem__(
                "contact_report", {"changed": hue_time(when), "state": state}
            ),
        )

    def settle_motion(self, at: datetime | None = None) -> None:
        """Nobody moving: every motion-like resource reports "no motion" since ``at``.

        The captured fixture froze one sensor (and so its room and the home) mid-movement.
        """
        when = hue_time(at or self.clock.now())
        for resource in self._resources.values():
            if resource["type"] in MOTION_TYPES:
                self._set_motion(resource, False, datetime.fromisoformat(when))
        self._motion_until.clear()

    def bridge_offline(self, start: datetime, end: datetime, status: int = 503) -> None:
        """The bridge is unreachable from the cloud between ``start`` and ``end``."""
        self._outages.append(_Outage(start, end, status))

    def take_offline(self, status: int = 503) -> None:
        """The bridge drops off the internet from now until :meth:`bring_online`."""
        self._outages.append(_Outage(self.clock.now(), datetime.max.replace(tzinfo=UTC), status))

    def bring_online(self) -> None:
        """Every outage still going on ends now."""
        now = self.clock.now()
        for outage in self._outages:
            outage.end = min(outage.end, now)

    def rate_limit(self, requests: int, retry_after: int | None = None) -> None:
        """The next ``requests`` resource calls answer 429 (with Retry-After if given)."""
        self.rate_limited_requests = requests
        self.rate_limit_retry_after = retry_after

    def remove_device(self, device_id: str) -> None:
        """The user deleted a device in the Hue app: it and its services disappear."""
        device = self._resources.pop(device_id)
        for ref in device.get("services", []):
            self._resources.pop(ref["rid"], None)
        for resource in self._resources.values():
            children = resource.get("children")
            if isinstance(children, list):
                resource["children"] = [c for c in children if c.get("rid") != device_id]

    def add_device_like(self, template_id: str, name: str, room_id: str | None = None) -> str:
        """Pair a new device that looks like an existing one (fresh ids); return its id."""
        device = copy.deepcopy(self._resources[template_id])
        new_id = str(uuid.uuid4())
        device["id"] = new_id
        device.setdefault("metadata", {})["name"] = name
        services = []
        for ref in device.get("services", []):
            if ref["rid"] not in self._resources:
                continue
            service = copy.deepcopy(self._resources[ref["rid"]])
            service["id"] = str(uuid.uuid4())
            service["owner"] = {"rid": new_id, "rtype": "device"}
            self._resources[service["id"]] = service
            services.append({"rid": service["id"], "rtype": ref["rtype"]})
        device["services"] = services
        self._resources[new_id] = device
        if room_id is not None:
            self._resources[room_id]["children"].append({"rid": new_id, "rtype": "device"})
        return new_id

    # -- motion mechanics ----------------------------------------------------------------------

    def _motion_id(self, sensor: str) -> str:
        resource = self._resources[sensor]
        if resource["type"] == "motion":
            return sensor
        return str(self._service(sensor, "motion")["id"])

    def _service(self, device_or_service: str, rtype: str) -> Resource:
        resource = self._resources[device_or_service]
        if resource["type"] == rtype:
            return resource
        service = self.service_of(device_or_service, rtype)
        if service is None:
            raise KeyError(f"{device_or_service} has no {rtype}")
        return service

    def _motion_starts(self, sensor_id: str, when: datetime, movement_end: datetime) -> None:
        release = movement_end + timedelta(seconds=MOTION_HOLD_SECONDS)
        self._motion_until[sensor_id] = max(release, self._motion_until.get(sensor_id, release))
        if not self._is_moving(sensor_id):
            self._set_motion(self._resources[sensor_id], True, when)
            self._update_groups(sensor_id, when)
        self.at(release, lambda at: self._motion_may_end(sensor_id, at))

    def _motion_may_end(self, sensor_id: str, when: datetime) -> None:
        # A later movement extended the hold: its own release event will end it.
        if self._motion_until.get(sensor_id, when) > when or not self._is_moving(sensor_id):
            return
        del self._motion_until[sensor_id]
        self._set_motion(self._resources[sensor_id], False, when)
        self._update_groups(sensor_id, when)

    def _is_moving(self, motion_id: str) -> bool:
        return bool(self._resources[motion_id]["motion"]["motion_report"]["motion"])

    @staticmethod
    def _set_motion(resource: Resource, moving: bool, when: datetime) -> None:
        block = resource.setdefault("motion", {})
        block["motion_report"] = {"changed": hue_time(when), "motion": moving}
        if "motion" in block:  # the deprecated mirror, where the bridge still sends it
            block["motion"] = moving

    def _update_groups(self, sensor_id: str, when: datetime) -> None:
        """Room- and home-level grouped_motion follow the sensors inside them."""
        owner = self._resources[sensor_id].get("owner", {}).get("rid")
        for group in self._resources.values():
            if group["type"] not in ("room", "bridge_home"):
                continue
            devices = self._devices_in(group)
            if owner not in devices:
                continue
            grouped = next(
                (
                    self._resources[ref["rid"]]
                    for ref in group.get("services", [])
                    if ref["rtype"] == "grouped_motion" and ref["rid"] in self._resources
                ),
                None,
            )
            if grouped is None:
                continue
            moving = any(
                self._is_moving(m["id"])
                for m in self.of_type("motion")
                if m.get("owner", {}).get("rid") in devices
            )
            if grouped["motion"]["motion_report"]["motion"] != moving:
                self._set_motion(grouped, moving, when)

    def _devices_in(self, group: Resource) -> set[str]:
        devices: set[str] = set()
        for child in group.get("children", []):
            if child["rtype"] == "device":
                devices.add(child["rid"])
            elif child["rtype"] == "room" and child["rid"] in self._resources:
                devices |= self._devices_in(self._resources[child["rid"]])
        return devices
