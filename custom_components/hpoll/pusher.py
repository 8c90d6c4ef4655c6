"""RelayPusher: reports to the hpoll relay, through a queue that survives outages and restarts.

Every push interval the pusher looks at the home: new activity, a device or the bridge changed,
or a heartbeat due. If so, it queues one report (``activity/report.py``) and the sender delivers
the queue in order. Failures are made visible (a connection entity, a repair issue for a
rejected token) and never block the queue for good: a report the relay refuses as invalid is
logged and dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from enum import StrEnum
import random
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later, async_track_time_interval
from homeassistant.helpers.json import json_bytes
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .activity.log import HOME
from .activity.push_queue import ReportQueue
from .activity.report import build_report
from .activity.tracker import ActivityEvent
from .const import (
    DOMAIN,
    HEARTBEAT,
    ISSUE_RELAY_REPORTS_REFUSED,
    ISSUE_RELAY_TOKEN_REJECTED,
    LOGGER,
    PUSH_RETRY_BASE,
    PUSH_RETRY_MAX,
    REFUSALS_FOR_REPAIR,
)
from .coordinator import HpollConfigEntry, HpollCoordinator
from .relay_client import (
    RelayClient,
    RelayRateLimitedError,
    RelayReportRejectedError,
    RelayTokenRejectedError,
    RelayUnreachableError,
)

HEARTBEAT_SLACK = timedelta(seconds=5)


class PushProblem(StrEnum):
    """Why the last push did not go through (shown on the relay connection entity)."""

    UNREACHABLE = "unreachable"
    RATE_LIMITED = "rate_limited"
    TOKEN_REJECTED = "token_rejected"  # noqa: S105 - a state, not a secret


def refused_issue_id(entry_id: str) -> str:
    """The repair issue raised when the relay keeps refusing this entry's reports."""
    return f"{ISSUE_RELAY_REPORTS_REFUSED}_{entry_id}"


def token_issue_id(entry_id: str) -> str:
    """The repair issue raised when the relay refuses this entry's token."""
    return f"{ISSUE_RELAY_TOKEN_REJECTED}_{entry_id}"


def _changes(report: dict[str, Any]) -> Hashable:
    """What makes a report worth sending before the heartbeat: devices (not their last_seen,
    which moves with every sensor reading), the bridge, and the inactivity verdict's state."""
    devices = tuple(
        tuple(value for key, value in device.items() if key != "last_seen")
        for device in report["devices"]
    )
    verdict = report.get("verdict") or {}
    judged = tuple(verdict.get(key) for key in ("state", "reason", "away", "low_activity_today"))
    return devices, tuple(report["bridge"].values()), judged


class RelayPusher:
    """One per config entry with a relay configured."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HpollConfigEntry,
        coordinator: HpollCoordinator,
        client: RelayClient,
        *,
        home_id: str,
        interval: timedelta,
        rng: random.Random | None = None,
    ) -> None:
        """Nothing runs until :meth:`async_start`."""
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.client = client
        self.home_id = home_id
        self.interval = interval
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._store: Store[dict[str, Any]] = Store(
            hass, 1, f"{DOMAIN}.{entry.entry_id}.relay_queue", private=True
        )
        self.queue = ReportQueue()
        #: None until the first push was tried; then whether the last one went through.
        self.connected: bool | None = None
        self.problem: PushProblem | None = None
        #: The relay's own words about the last failure (never the token).
        self.last_error: str | None = None
        self.last_success: datetime | None = None
        self.retry_at: datetime | None = None
        self._failures = 0
        #: Reports the relay refused for good since it last took one.
        self._refused_in_row = 0
        self._activity: list[ActivityEvent] = []
        self._last_changes: Hashable = None
        self._last_queued_at: datetime | None = None
        self._sender: asyncio.Task[None] | None = None
        self._retry_unsub: CALLBACK_TYPE | None = None
        self._unsubs: list[CALLBACK_TYPE] = []
        self._listeners: list[CALLBACK_TYPE] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Load what was waiting before a restart, report the home now, then keep reporting."""
        self.queue = ReportQueue.restore(await self._store.async_load())
        if len(self.queue):
            LOGGER.info("%d reports waiting for the relay from before", len(self.queue))
        self._unsubs = [
            self.coordinator.monitor.async_add_activity_listener(self._on_activity),
            async_track_time_interval(
                self.hass, self._async_tick, self.interval, name="hpoll relay report"
            ),
        ]
        self.async_queue_report(force=True)

    async def async_stop(self) -> None:
        """Queue what is not reported yet, stop sending, and write the queue to disk now."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs = []
        self._cancel_retry()
        if self._activity:
            self.async_queue_report(force=True, send=False)
        if self._sender is not None and not self._sender.done():
            # An unanswered report stays at the head; the relay drops the repeat by report_id.
            self._sender.cancel()
        await self._store.async_save(self.queue.export())

    # -- what to report --------------------------------------------------------------------

    @callback
    def _on_activity(self, events: list[ActivityEvent]) -> None:
        self._activity.extend(events)

    @callback
    def _async_tick(self, _now: datetime) -> None:
        self.async_queue_report()

    @callback
    def async_queue_report(self, *, force: bool = False, send: bool = True) -> None:
        """Queue a report if anything changed or the heartbeat is due (or ``force``)."""
        now = dt_util.utcnow()
        report = self._build(now)
        changes = _changes(report)
        # A tick can come a hair early; without the slack the heartbeat would slip a whole tick.
        heartbeat_due = (
            self._last_queued_at is None
            or now - self._last_queued_at >= HEARTBEAT - HEARTBEAT_SLACK
        )
        if not (force or self._activity or heartbeat_due or changes != self._last_changes):
            return
        self._activity = []
        self._last_changes = changes
        self._last_queued_at = now
        self.queue.append(report)
        self._save_soon()
        self._notify()
        if send:
            self._kick()

    def _build(self, now: datetime) -> dict[str, Any]:
        coordinator = self.coordinator
        counters = {
            "polls": coordinator.polls,
            "poll_failures": coordinator.poll_failures,
            "activity_today": coordinator.monitor.activity.count_today(HOME, now),
            "queue_depth": len(self.queue),
            **self.queue.counters,
        }
        return build_report(
            coordinator.data,
            home_id=self.home_id,
            bridge_name=self.entry.title,
            now=now,
            activity=self._activity,
            counters=counters,
            reachable=coordinator.last_update_success,
            offline_since=coordinator.offline_since,
            verdict=coordinator.monitor.verdict.as_report(),
        )

    # -- sending ---------------------------------------------------------------------------

    @callback
    def _kick(self) -> None:
        """Start sending unless a send is running, a retry is scheduled, or the token is bad."""
        if self._retry_unsub is not None or self.problem is PushProblem.TOKEN_REJECTED:
            return
        if self._sender is None or self._sender.done():
            self._sender = self.entry.async_create_background_task(
                self.hass, self._async_send_queue(), "hpoll relay push"
            )

    async def _async_send_queue(self) -> None:
        try:
            while (item := self.queue.head) is not None:
                # Counted BEFORE the request: a report that may have arrived is never merged.
                item.attempts += 1
                try:
                    await self.client.post_report(json_bytes(item.report))
                except RelayTokenRejectedError as err:
                    self._token_rejected(err.reason)
                    return
                except RelayReportRejectedError as err:
                    LOGGER.error(
                        "The relay refused report %s for good (%s); dropped so later ones can go",
                        item.report["report_id"],
                        err.reason,
                    )
                    self.queue.remove(item, delivered=False)
                    self._save_soon()
                    self._refused(err.reason)
                    continue
                except RelayRateLimitedError as err:
                    self._retry_later(PushProblem.RATE_LIMITED, err.reason, err.retry_after)
                    return
                except RelayUnreachableError as err:
                    self._retry_later(PushProblem.UNREACHABLE, err.reason, None)
                    return
                self.queue.remove(item, delivered=True)
                self._save_soon()
                self._delivered()
        finally:
            self._notify()  # whatever happened, the entities show it

    def _delivered(self) -> None:
        if self.connected is False:
            LOGGER.info("The relay takes reports again (%d waiting)", len(self.queue))
        ir.async_delete_issue(self.hass, DOMAIN, token_issue_id(self.entry.entry_id))
        ir.async_delete_issue(self.hass, DOMAIN, refused_issue_id(self.entry.entry_id))
        self._refused_in_row = 0
        self.connected = True
        self.problem = None
        self.last_error = None
        self.retry_at = None
        self._failures = 0
        self.last_success = dt_util.utcnow()

    def _refused(self, reason: str) -> None:
        """A report refused for good: once is a fluke; again and again, this home is silent on
        the relay (every report carries the same devices), and the user must hear of it."""
        self._refused_in_row += 1
        if self._refused_in_row >= REFUSALS_FOR_REPAIR:
            self._raise_issue(
                refused_issue_id(self.entry.entry_id),
                ISSUE_RELAY_REPORTS_REFUSED,
                count=str(self._refused_in_row),
                reason=reason,
            )

    def _token_rejected(self, reason: str) -> None:
        LOGGER.error(
            "The relay rejected this home's token (%s); reports are kept until it is replaced",
            reason,
        )
        self._failed(PushProblem.TOKEN_REJECTED, reason)
        self._raise_issue(
            token_issue_id(self.entry.entry_id), ISSUE_RELAY_TOKEN_REJECTED, reason=reason
        )

    def _raise_issue(self, issue_id: str, key: str, **placeholders: str) -> None:
        """A repair issue about this home's push (the bridge named in it)."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=key,
            translation_placeholders={"bridge": self.entry.title, **placeholders},
        )

    def _retry_later(self, problem: PushProblem, reason: str, retry_after: float | None) -> None:
        if self.connected is not False:
            LOGGER.warning("Cannot deliver reports to the relay (%s); will retry", reason)
        self._failed(problem, reason)
        if retry_after is None:
            ceiling = min(PUSH_RETRY_MAX, PUSH_RETRY_BASE * 2 ** (self._failures - 1))
            # Jitter: a relay coming back is not hit by every home in the same second.
            retry_after = ceiling * self._rng.uniform(0.5, 1.0)
        retry_after = max(1.0, retry_after)  # "Retry-After: 0" must not become a busy loop
        self.retry_at = dt_util.utcnow() + timedelta(seconds=retry_after)
        self._retry_unsub = async_call_later(
            self.hass, retry_after, HassJob(self._retry_now, cancel_on_shutdown=True)
        )

    def _failed(self, problem: PushProblem, reason: str) -> None:
        self.connected = False
        self.problem = problem
        self.last_error = reason
        self._failures += 1

    @callback
    def _retry_now(self, _now: datetime) -> None:
        self._retry_unsub = None
        self._kick()

    def _cancel_retry(self) -> None:
        if self._retry_unsub is not None:
            self._retry_unsub()
            self._retry_unsub = None

    def _save_soon(self) -> None:
        self._store.async_delay_save(self.queue.export, 1)

    # -- for entities and diagnostics ------------------------------------------------------

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> Callable[[], None]:
        """Call ``listener`` whenever the queue or the connection changes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    def stats(self) -> dict[str, Any]:
        """Queue and delivery figures (diagnostics; no URL, no token)."""
        return {
            "connected": self.connected,
            "problem": self.problem,
            "last_error": self.last_error,
            "last_success": self.last_success,
            "retry_at": self.retry_at,
            "consecutive_failures": self._failures,
            "queue_depth": len(self.queue),
            "oldest_waiting": self.queue.oldest_sent_at,
            "push_interval_seconds": self.interval.total_seconds(),
            **self.queue.counters,
        }
