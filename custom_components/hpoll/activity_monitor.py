"""The home's activity in Home Assistant: tracker and aggregates, inactivity, the learned
baseline, their events, and their persistence in HA's Store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .activity.baseline import QuietBaseline
from .activity.log import HOME, ActivityLog, in_quiet_hours, is_inactive
from .activity.tracker import ActivityEvent
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
        #: The home is inactive (None: no activity seen yet, so nothing to judge by).
        self.inactive: bool | None = None
        self.baseline = QuietBaseline(dt_util.get_default_time_zone())
        #: Quieter than this home usually is now (None while the baseline is learning).
        self.unusually_quiet: bool | None = None
        options = entry.options
        self.inactivity_threshold = timedelta(
            hours=float(options.get(CONF_INACTIVITY_HOURS, DEFAULT_INACTIVITY_HOURS))
        )
        self.quiet_hours = (
            time.fromisoformat(options.get(CONF_QUIET_START, DEFAULT_QUIET_START)),
            time.fromisoformat(options.get(CONF_QUIET_END, DEFAULT_QUIET_END)),
        )
        self._activity_listeners: list[Callable[[list[ActivityEvent]], None]] = []

    @callback
    def async_add_activity_listener(
        self, listener: Callable[[list[ActivityEvent]], None]
    ) -> Callable[[], None]:
        """Call ``listener`` with each poll's new activity; returns the unsubscribe."""
        self._activity_listeners.append(listener)
        return lambda: self._activity_listeners.remove(listener)

    async def async_load(self) -> None:
        """What the tracker and the baseline knew before a restart (nothing counted twice)."""
        stored = await self._store.async_load() or {}
        zone = dt_util.get_default_time_zone()
        self.activity = ActivityLog.restore(
            stored.get("activity"), timezone=zone, started_at=dt_util.utcnow()
        )
        self.baseline = QuietBaseline.restore(stored.get("baseline"), zone)

    def _stored_state(self) -> dict[str, Any]:
        return {"activity": self.activity.export(), "baseline": self.baseline.export()}

    async def async_save(self) -> None:
        """Write the tracker's and the baseline's state now (unload)."""
        await self._store.async_save(self._stored_state())

    async def async_update(self, snapshot: Snapshot) -> None:
        """Fold in one poll's snapshot."""
        now = dt_util.utcnow()
        if snapshot.bridge is not None and snapshot.bridge.time_zone:
            # Days are counted in the HOME's timezone, which is the bridge's, not HA's.
            zone = await dt_util.async_get_time_zone(snapshot.bridge.time_zone)
            if zone is not None:
                self.activity.timezone = self.baseline.timezone = zone
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
        self.baseline.observe(now, self.activity.last.get(HOME))
        self._store.async_delay_save(self._stored_state, 30)
        self._judge_inactivity(now)

    def inactive_in(self, room: str, now: datetime) -> bool | None:
        """The inactivity rule for one room ('' for the whole home)."""
        return is_inactive(
            self.activity.last.get(room),
            now,
            self.inactivity_threshold,
            in_quiet_hours(now, self.activity.timezone, *self.quiet_hours),
            away=self.activity.away,
        )

    @callback
    def _judge_inactivity(self, now: datetime) -> None:
        last = self.activity.last.get(HOME)
        inactive = self.inactive_in(HOME, now)
        if inactive is not None and self.inactive is not None and inactive != self.inactive:
            self.hass.bus.async_fire(
                EVENT_INACTIVITY_STARTED if inactive else EVENT_INACTIVITY_ENDED,
                {
                    "entry_id": self.entry_id,
                    "last_activity": last.isoformat() if last else None,
                },
            )
        self.inactive = inactive
        self.unusually_quiet = self.baseline.unusually_quiet(now, last, self.activity.away)
