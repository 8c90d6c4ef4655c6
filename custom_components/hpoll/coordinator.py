"""One coordinator per bridge: ONE ``GET /clip/v2/resource`` per poll, failures made visible."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    OAuth2TokenRequestBaseError,
    OAuth2TokenRequestReauthError,
)
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .activity_monitor import ActivityMonitor
from .const import (
    DAILY_REQUEST_BUDGET,
    DOMAIN,
    ISSUE_BRIDGE_OFFLINE,
    LOGGER,
    MAX_RATE_LIMIT_BACKOFF,
    OFFLINE_REPAIR_AFTER,
    POLL_INTERVAL,
)
from .hue import (
    HueAppKeyError,
    HueAuthError,
    HueBridgeOfflineError,
    HueConnectionError,
    HueRateLimitedError,
    HueRemoteClient,
    HueResponseError,
    Snapshot,
)

if TYPE_CHECKING:
    from .pusher import RelayPusher

type HpollConfigEntry = ConfigEntry[HpollData]

#: Poll this long after each grid point: the bridge's state then includes the moment itself.
#: (HA starts a scheduled refresh up to a second later than asked, never earlier.)
GRID_LAG = 0.5
#: Intervals the automatic one stretches to: each divides an hour, so polls stay on a grid.
GRID_INTERVALS = (60, 120, 180, 240, 300, 360, 600, 900, 1200, 1800, 3600)
#: A short rate limit keeps the last data while it is at most this many poll intervals old by
#: the next poll (entities stay as they were; Cloud connection says "rate limited"); a longer
#: one makes them unavailable at once.
STALE_AFTER_POLLS = 5


def poll_interval(bridges_on_app: int, budget: int = DAILY_REQUEST_BUDGET) -> int:
    """Seconds between polls so that ``bridges_on_app`` bridges sharing one Hue developer app
    stay within ``budget`` requests a day: 60 s up to 27 bridges, then the next grid step."""
    needed = max(86_400 * max(1, bridges_on_app) / budget, POLL_INTERVAL)
    return next((s for s in GRID_INTERVALS if s >= needed), GRID_INTERVALS[-1])


def seconds_to_grid(now: float, period: float) -> float:
    """From ``now`` (a Unix time) to the next point of the period's wall-clock grid, plus the
    lag; at least a second (a poll that ran just before a grid point takes the next one)."""
    delay = (now // period + 1) * period + GRID_LAG - now
    return delay + period if delay < 1.0 else delay


@dataclass
class HpollData:
    """What a loaded config entry holds at runtime."""

    client: HueRemoteClient
    coordinator: HpollCoordinator
    #: Reports to the hpoll relay, when one is configured in the options.
    pusher: RelayPusher | None = None


def room_identifier(bridge_id: str, room_id: str) -> str:
    """Device-registry identifier of a Hue room (its activity entities live there)."""
    return f"{bridge_id}_room_{room_id}"


class PollProblem(StrEnum):
    """Why the last poll brought no data (shown on the bridge's connection entity)."""

    BRIDGE_OFFLINE = "bridge_offline"
    RATE_LIMITED = "rate_limited"
    CLOUD_UNREACHABLE = "cloud_unreachable"
    INVALID_RESPONSE = "invalid_response"
    AUTHENTICATION = "authentication"


class HpollCoordinator(DataUpdateCoordinator[Snapshot]):
    """Polls one bridge through the Hue cloud and keeps HA's devices in step with it."""

    config_entry: HpollConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: HpollConfigEntry, client: HueRemoteClient
    ) -> None:
        """Poll automatically: once a minute, slower when many bridges share the Hue app."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=timedelta(seconds=POLL_INTERVAL),
        )
        self.client = client
        self.bridge_id: str = entry.unique_id or ""
        #: Device-registry id of the bridge, registered at setup; other devices link to it.
        self.bridge_device_id: str = ""
        self.problem: PollProblem | None = None
        #: When the bridge was first found unreachable in the current outage.
        self.offline_since: datetime | None = None
        self.last_success: datetime | None = None
        #: Seconds between polls (automatic, see poll_interval); ``update_interval`` holds the
        #: wait until the next poll on this period's grid.
        self.poll_interval: int = POLL_INTERVAL
        self._rate_limit_streak = 0
        #: Since the entry was loaded; the relay gets them in every report.
        self.polls = 0
        self.poll_failures = 0
        self._known_devices: set[str] = set()
        #: What the home's activity adds up to (tracker, counts, the inactivity verdict).
        self.monitor = ActivityMonitor(hass, entry)

    def _next_poll(self, wait: float | None = None) -> None:
        """Schedule the next poll: on the wall-clock grid of the poll interval (…:00, …:01 for
        one minute), or after ``wait`` seconds (Retry-After).

        The bridge keeps only the LATEST report time per sensor, so what one poll can tell is
        bounded by the time since the previous one. Polls on the grid split the day exactly where
        fixed windows (5 minutes, a quarter hour) do, so every window with activity holds its
        own report time: measured by bench/activity_recall.py (300 s polls: 89 % of 5-minute
        windows at a random phase, 100 % on the grid).
        """
        app = self.config_entry.data.get("auth_implementation")
        shared = [
            entry
            for entry in self.hass.config_entries.async_entries(DOMAIN, include_disabled=False)
            if entry.data.get("auth_implementation") == app
        ]
        self.poll_interval = poll_interval(len(shared))
        if wait is None:
            wait = seconds_to_grid(dt_util.utcnow().timestamp(), self.poll_interval)
        self.update_interval = timedelta(seconds=wait)

    @override
    async def _async_update_data(self) -> Snapshot:
        self.polls += 1
        try:
            snapshot = await self._fetch()
        except HueRateLimitedError as err:
            self.poll_failures += 1
            return self._rate_limited(err)
        except (ConfigEntryAuthFailed, UpdateFailed):
            self.poll_failures += 1
            self.monitor.async_blind()
            self._next_poll()
            raise
        self._recovered()
        self._next_poll()
        self._remove_stale_devices(snapshot)
        await self.monitor.async_update(snapshot)
        return snapshot

    async def _fetch(self) -> Snapshot:
        """One bulk GET; every Hue failure mapped to what HA shows for it (a rate limit is
        the caller's to handle)."""
        try:
            return await self.client.get_resources()
        except HueAppKeyError as err:
            self.problem = PollProblem.AUTHENTICATION
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="app_key_rejected"
            ) from err
        except (HueAuthError, OAuth2TokenRequestReauthError) as err:
            self.problem = PollProblem.AUTHENTICATION
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="authentication_failed"
            ) from err
        except HueBridgeOfflineError as err:
            self._bridge_offline()
            raise UpdateFailed(translation_domain=DOMAIN, translation_key="bridge_offline") from err
        except (HueConnectionError, OAuth2TokenRequestBaseError) as err:
            self.problem = PollProblem.CLOUD_UNREACHABLE
            raise UpdateFailed(
                translation_domain=DOMAIN, translation_key="cloud_unreachable"
            ) from err
        except HueResponseError as err:
            self.problem = PollProblem.INVALID_RESPONSE
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="invalid_response",
                translation_placeholders={"error": str(err)},
            ) from err

    def _rate_limited(self, err: HueRateLimitedError) -> Snapshot:
        """Wait as Hue says (or back off, doubling); meanwhile keep the last data while it is
        recent: a short 429 must not blank every entity. Older data goes unavailable."""
        self.problem = PollProblem.RATE_LIMITED
        self._rate_limit_streak += 1
        # Without Retry-After, double the wait with every 429 in a row, within reason.
        wait = err.retry_after
        if wait is None:
            wait = min(MAX_RATE_LIMIT_BACKOFF, self.poll_interval * 2.0**self._rate_limit_streak)
        # Never sooner than the next poll on the grid: "Retry-After: 0" (or a date the home's
        # clock has passed) must neither hammer the cloud nor stop polling (a zero interval
        # does: HA's coordinator then never schedules again).
        wait = max(wait, seconds_to_grid(dt_util.utcnow().timestamp(), self.poll_interval))
        self._next_poll(wait)
        if self.data is not None and self.last_success is not None:
            age_at_next_poll = dt_util.utcnow() - self.last_success + timedelta(seconds=wait)
            if age_at_next_poll <= timedelta(seconds=self.poll_interval * STALE_AFTER_POLLS):
                return self.data
        raise UpdateFailed(
            translation_domain=DOMAIN,
            translation_key="rate_limited",
            translation_placeholders={"seconds": f"{wait:.0f}"},
            retry_after=wait,
        )

    def _bridge_offline(self) -> None:
        now = dt_util.utcnow()
        self.problem = PollProblem.BRIDGE_OFFLINE
        if self.offline_since is None:
            self.offline_since = now
        if now - self.offline_since >= OFFLINE_REPAIR_AFTER:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                f"{ISSUE_BRIDGE_OFFLINE}_{self.config_entry.entry_id}",
                is_fixable=False,
                is_persistent=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_BRIDGE_OFFLINE,
                translation_placeholders={
                    "bridge": self.config_entry.title,
                    "since": self._home_time(self.offline_since),
                },
            )

    def _home_time(self, when: datetime) -> str:
        """A time as the home reads it: "2026-07-28 14:05 (Europe/Berlin)"."""
        zone = self.monitor.activity.timezone
        return f"{when.astimezone(zone):%Y-%m-%d %H:%M} ({zone})"

    def _recovered(self) -> None:
        if self.offline_since is not None:
            LOGGER.info(
                "Bridge %s is reachable again after %s",
                self.config_entry.title,
                dt_util.utcnow() - self.offline_since,
            )
            ir.async_delete_issue(
                self.hass, DOMAIN, f"{ISSUE_BRIDGE_OFFLINE}_{self.config_entry.entry_id}"
            )
        self.offline_since = None
        self.problem = None
        self._rate_limit_streak = 0
        self.last_success = dt_util.utcnow()

    def identifiers(self, snapshot: Snapshot) -> set[str]:
        """Registry identifiers of everything the bridge has now: devices and rooms."""
        return set(snapshot.devices) | {room_identifier(self.bridge_id, r) for r in snapshot.rooms}

    @callback
    def _remove_stale_devices(self, snapshot: Snapshot) -> None:
        """Detach HA devices whose Hue device is gone (deleted in the Hue app)."""
        current = self.identifiers(snapshot)
        if current == self._known_devices:
            return
        self._known_devices = current
        registry = dr.async_get(self.hass)
        for device in dr.async_entries_for_config_entry(registry, self.config_entry.entry_id):
            hue_ids = {ident for domain, ident in device.identifiers if domain == DOMAIN}
            if hue_ids and not hue_ids & current and self.bridge_id not in hue_ids:
                LOGGER.debug("Removing device %s: no longer on the bridge", device.name)
                registry.async_remove_device(device.id)
