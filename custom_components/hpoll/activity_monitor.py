"""The home's activity in Home Assistant: tracker and aggregates, the inactivity detector's
verdict, their events, and their persistence in HA's Store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .activity.detector import UNKNOWN, InactivityDetector, Verdict, in_quiet_hours
from .activity.log import ActivityLog
from .activity.tracker import ActivityEvent, source_states
from .const import (
    CONF_INACTIVITY_HOURS,
    CONF_QUIET_END,
    CONF_QUIET_START,
    DEFAULT_INACTIVITY_HOURS,
    DEFAULT_QUIET_END,
    DEFAULT_QUIET_START,
    DOMAIN,
    EVENT_ACTIVITY,
    EVENT_INACTIVITY_ENDED,
    EVENT_INACTIVITY_STARTED,
)
from .hue import Snapshot


class ActivityMonitor:
    """Fed one snapshot per successful poll; read by the activity entities."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry[Any]) -> None:
        """Settings from the entry's options; state restored by ``async_load``."""
        self.hass = hass
        self.entry_id = entry.entry_id
        self._store: Store[dict[str, Any]] = Store(
            hass, 1, f"{DOMAIN}.{entry.entry_id}.activity", private=True
        )
        self.activity = ActivityLog.restore(
            None, timezone=dt_util.get_default_time_zone(), started_at=dt_util.utcnow()
        )
        options = entry.options
        #: The user's fixed threshold: the detector's safety net, and each room's own rule.
        self.inactivity_threshold = timedelta(
            hours=float(options.get(CONF_INACTIVITY_HOURS, DEFAULT_INACTIVITY_HOURS))
        )
        self.quiet_hours = (
            time.fromisoformat(options.get(CONF_QUIET_START, DEFAULT_QUIET_START)),
            time.fromisoformat(options.get(CONF_QUIET_END, DEFAULT_QUIET_END)),
        )
        self.detector = self._detector(None, dt_util.get_default_time_zone())
        #: What the detector says now (entities, events and the relay's report read this).
        self.verdict: Verdict = self.detector.verdict(dt_util.utcnow())
        self._activity_listeners: list[Callable[[list[ActivityEvent]], None]] = []

    @callback
    def async_add_activity_listener(
        self, listener: Callable[[list[ActivityEvent]], None]
    ) -> Callable[[], None]:
        """Call ``listener`` with each poll's new activity; returns the unsubscribe."""
        self._activity_listeners.append(listener)
        return lambda: self._activity_listeners.remove(listener)

    def _detector(self, data: dict[str, Any] | None, zone: tzinfo) -> InactivityDetector:
        return InactivityDetector.restore(
            data,
            zone,
            safety_net=self.inactivity_threshold,
            quiet_hours=self.quiet_hours,
            now=dt_util.utcnow(),
        )

    @property
    def inactive(self) -> bool | None:
        """The home is inactive (None: nothing to judge by, or the bridge cannot be read)."""
        return None if self.verdict.state == UNKNOWN else self.verdict.inactive

    async def async_load(self) -> None:
        """What the tracker and the detector knew before a restart (nothing counted twice)."""
        stored = await self._store.async_load()
        if not isinstance(stored, dict):
            stored = {}
        zone = dt_util.get_default_time_zone()
        self.activity = ActivityLog.restore(
            stored.get("activity"), timezone=zone, started_at=dt_util.utcnow()
        )
        self.detector = self._detector(stored.get("detector"), zone)
        self.verdict = self.detector.verdict(dt_util.utcnow())

    def _stored_state(self) -> dict[str, Any]:
        return {"activity": self.activity.export(), "detector": self.detector.export()}

    async def async_save(self) -> None:
        """Write the tracker's and the detector's state now (unload)."""
        await self._store.async_save(self._stored_state())

    @callback
    def async_blind(self) -> None:
        """A poll failed: nothing is known now, and the detector learns nothing from it."""
        self._judge(self.detector.observe(dt_util.utcnow(), [], reachable=False))

    async def async_update(self, snapshot: Snapshot) -> None:
        """Fold in one poll's snapshot."""
        now = dt_util.utcnow()
        if snapshot.bridge is not None and snapshot.bridge.time_zone:
            # Days are counted in the HOME's timezone, which is the bridge's, not HA's.
            zone = await dt_util.async_get_time_zone(snapshot.bridge.time_zone)
            if zone is not None:
                self.activity.timezone = self.detector.timezone = zone
        events = self.activity.tracker.update(snapshot, now)
        fresh = self.activity.record(events, now)
        for listener in self._activity_listeners:
            listener(fresh)
        for event in fresh:
            self.hass.bus.async_fire(
                EVENT_ACTIVITY,
                {
                    "entry_id": self.entry_id,
                    "room": event.room,
                    "sensor_id": event.sensor_id,
                    "kind": event.kind,
                    "at": event.at.isoformat(),
                    "sampled": event.sampled,
                },
            )
        self._judge(self.detector.observe(now, events, sensors=source_states(snapshot)))
        self._store.async_delay_save(self._stored_state, 30)

    def inactive_in(self, room: str, now: datetime) -> bool | None:
        """One room's own rule: no activity there for the user's threshold, outside quiet
        hours, unless the home is out (None before any activity there)."""
        last = self.activity.last.get(room)
        if last is None:
            return None
        local = now.astimezone(self.activity.timezone).time()
        if self.verdict.away or in_quiet_hours(local, *self.quiet_hours):
            return False
        return now - last >= self.inactivity_threshold

    @callback
    def _judge(self, verdict: Verdict) -> None:
        was = self.inactive
        self.verdict = verdict
        inactive = self.inactive
        if inactive is not None and was is not None and inactive != was:
            last = verdict.last_activity
            self.hass.bus.async_fire(
                EVENT_INACTIVITY_STARTED if inactive else EVENT_INACTIVITY_ENDED,
                {
                    "entry_id": self.entry_id,
                    "last_activity": last.isoformat() if last else None,
                    "reason": verdict.reason,
                },
            )
