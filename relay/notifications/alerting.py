"""Alert rules: which conditions hold for which homes now, and the alerts they open and resolve.

``conditions`` reads every home at once (set-wide queries). ``reconcile`` turns the conditions
into alert rows with hysteresis: a condition opens an alert at once (each rule already demands
that it lasted: 3 hours without activity, 60 minutes offline …), but a cleared condition only
resolves it after ``CLEAR_FOR`` (good news can wait five minutes; a flapping Zigbee link must not
send a message a minute), and an alert resolved less than ``COOLDOWN`` ago is not reopened.
Inactivity is the urgent one: activity resolves it at once, quiet hours do not hold it back,
and it walks the escalation chain until someone acknowledges it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
import itertools
import secrets
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update

from ..storage.models import ACTIVITY, ALERTS, DEVICES, HOMES, IN_LIST
from .schedule import in_window, parse_hhmm, window_start
from .summary import span_words

OPEN, ACKED, RESOLVED = "open", "acked", "resolved"
CLEAR_FOR = timedelta(minutes=5)
COOLDOWN = timedelta(minutes=30)
#: The baseline: the same hours of the week, this many weeks back.
BASELINE_WEEKS = 4
#: Activity is judged only while the home's newest report is this fresh: a home sending what it
#: queued during an outage (oldest first) has not told us about its last hours yet.
FRESH_REPORT = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class HomeRules:
    """Alerting settings of a home (defaults, overridden per home by ``homes.settings``)."""

    inactivity: timedelta = timedelta(hours=3)
    active_start: time = time(7, 0)
    active_end: time = time(22, 0)
    offline_after: timedelta = timedelta(minutes=60)
    stale_after: timedelta = timedelta(minutes=30)
    bridge_after: timedelta = timedelta(minutes=15)
    quiet_window: timedelta = timedelta(hours=2)
    #: "Unusually quiet": the same window had activity in at least this many of the past weeks.
    quiet_weeks_active: int = 4

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None) -> HomeRules:
        """Overrides as stored by ``hpoll-relay home set`` (minutes and HH:MM)."""
        if not settings:
            return DEFAULT_RULES  # most homes: no object per home and minute
        rules = cls()
        minutes = {
            "inactivity_minutes": "inactivity",
            "offline_minutes": "offline_after",
            "stale_minutes": "stale_after",
            "bridge_minutes": "bridge_after",
        }
        changes: dict[str, Any] = {
            attribute: timedelta(minutes=int(settings[key]))
            for key, attribute in minutes.items()
            if key in settings
        }
        if "active_start" in settings:
            changes["active_start"] = parse_hhmm(settings["active_start"])
        if "active_end" in settings:
            changes["active_end"] = parse_hhmm(settings["active_end"])
        return rules if not changes else cls(**{**_fields(rules), **changes})


DEFAULT_RULES = HomeRules()


def _fields(rules: HomeRules) -> dict[str, Any]:
    return {name: getattr(rules, name) for name in HomeRules.__slots__}


@dataclass(frozen=True, slots=True)
class Condition:
    """Something that is wrong at a home right now."""

    home_id: str
    kind: str
    subject: str
    text: str
    urgent: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    #: Keeps an open alert open, but does not open one: at night, or while the home is not
    #: reporting, nothing says the person is fine, and nothing new can be judged either.
    hold_only: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        """One alert per home, kind and subject (a device id, or '' for the home)."""
        return self.home_id, self.kind, self.subject


@dataclass(slots=True)
class AlertEvent:
    """An alert opened or resolved in this evaluation (what caregivers are told about)."""

    alert_id: int
    home_id: str
    kind: str
    text: str
    urgent: bool
    opened: bool
    ack_code: str | None = None


def _since(when: datetime, zone: ZoneInfo) -> str:
    return when.astimezone(zone).strftime("%a %H:%M")


def conditions(
    connection: Connection, now: datetime, listening_since: datetime | None = None
) -> list[Condition]:
    """Every condition that holds now, for every home.

    ``listening_since``: when this relay started. A home cannot have reported to a relay that
    was down, so silence counts from then at the earliest (no "stale" storm after a restart).
    """
    devices: defaultdict[str, list[Any]] = defaultdict(list)
    for row in connection.execute(
        select(DEVICES).where(
            DEVICES.c.battery_state.in_(("low", "critical")) | DEVICES.c.offline_since.isnot(None)
        )
    ):
        devices[row.home_id].append(row)
    found: list[Condition] = []
    maybe_quiet: dict[str, tuple[Any, HomeRules, ZoneInfo]] = {}
    # Every column but the counters: decoding 100,000 homes' JSON each minute for nothing.
    columns = [column for column in HOMES.c if column.name != "counters"]
    for home in connection.execute(select(*columns)):
        rules = HomeRules.from_settings(home.settings)
        zone = ZoneInfo(home.timezone)
        reporting = _reporting(home, rules, zone, now, listening_since)
        found += reporting
        found += _devices(home.id, devices.get(home.id, ()), rules, zone, now)
        stale = any(c.kind == "stale" for c in reporting)
        last = home.last_activity_at
        if last is None:
            continue  # no activity ever seen: nothing to judge by
        current = (
            home.last_report_sent_at is not None and now - home.last_report_sent_at <= FRESH_REPORT
        )
        if stale or not current or not in_window(now, zone, rules.active_start, rules.active_end):
            if stale or not current or now - last >= rules.inactivity:
                found += [
                    Condition(home.id, "inactivity", "", "", urgent=True, hold_only=True),
                    Condition(home.id, "quiet", "", "", hold_only=True),
                ]
            continue
        # Only the active hours count: the night before is not "3 hours without activity".
        since = max(last, window_start(now, zone, rules.active_start))
        if now - since >= rules.inactivity:
            found.append(
                Condition(
                    home.id,
                    "inactivity",
                    "",
                    f"no activity since {_since(last, zone)} ({span_words(now - last)})",
                    urgent=True,
                )
            )
        elif now - last >= rules.quiet_window and (
            now - home.created_at >= timedelta(weeks=BASELINE_WEEKS)
        ):
            maybe_quiet[home.id] = (home, rules, zone)
    # The baseline is read only for homes that are quiet right now (a few, not all of them).
    weeks_active = _weeks_active(connection, now, sorted(maybe_quiet))
    for home_id, (_home, rules, _zone) in maybe_quiet.items():
        if weeks_active.get(home_id, 0) >= rules.quiet_weeks_active:
            found.append(
                Condition(
                    home_id,
                    "quiet",
                    "",
                    f"quieter than usual: no activity in the last {_window(rules.quiet_window)}, "
                    f"when there was some at this time in each of the past {BASELINE_WEEKS} weeks",
                )
            )
    return found


def _reporting(
    home: Any, rules: HomeRules, zone: ZoneInfo, now: datetime, listening_since: datetime | None
) -> list[Condition]:
    """The home stopped reporting; its bridge is unreachable."""
    found = []
    reported = home.last_report_at or home.created_at
    if now - max(reported, listening_since or reported) >= rules.stale_after:
        found.append(
            Condition(
                home.id,
                "stale",
                "",
                f"no reports since {_since(reported, zone)}: its Home Assistant or its internet "
                "may be down",
            )
        )
    offline_since = home.bridge_offline_since
    if (
        home.bridge_reachable is False
        and offline_since is not None
        and now - offline_since >= rules.bridge_after
    ):
        found.append(
            Condition(
                home.id, "bridge", "", f"Hue bridge unreachable since {_since(offline_since, zone)}"
            )
        )
    return found


def _devices(
    home_id: str, rows: Iterable[Any], rules: HomeRules, zone: ZoneInfo, now: datetime
) -> list[Condition]:
    """Low batteries, and devices offline for too long."""
    found = []
    for device in rows:
        where = f" ({device.room})" if device.room else ""
        if device.battery_state in ("low", "critical"):
            level = f", {device.battery} %" if device.battery is not None else ""
            found.append(
                Condition(
                    home_id,
                    "battery",
                    device.device_id,
                    f"battery {device.battery_state}: {device.name}{where}{level}",
                    details={"state": device.battery_state},
                )
            )
        since = device.offline_since
        if since is not None and now - since >= rules.offline_after:
            found.append(
                Condition(
                    home_id,
                    "offline",
                    device.device_id,
                    f"offline since {_since(since, zone)}: {device.name}{where}",
                )
            )
    return found


def _window(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} hours"


def _weeks_active(connection: Connection, now: datetime, home_ids: list[str]) -> dict[str, int]:
    """In how many of the past weeks the same hours of the week had activity, per home (the
    home's own baseline, by hour of week)."""
    window = HomeRules().quiet_window
    weeks: defaultdict[str, int] = defaultdict(int)
    for chunk in itertools.batched(home_ids, IN_LIST):
        for week in range(1, BASELINE_WEEKS + 1):
            end = now - timedelta(weeks=week)
            rows = connection.execute(
                select(ACTIVITY.c.home_id)
                .where(ACTIVITY.c.home_id.in_(chunk))
                .where(ACTIVITY.c.last_at >= end - window, ACTIVITY.c.bucket_start < end)
                .where(ACTIVITY.c.bucket_start >= end - window - timedelta(minutes=15))
                .group_by(ACTIVITY.c.home_id)
            )
            for (home_id,) in rows:
                weeks[home_id] += 1
    return dict(weeks)


def reconcile(
    connection: Connection, found: list[Condition], now: datetime, escalate_after: timedelta
) -> list[AlertEvent]:
    """Open, keep, and resolve alerts to match ``found``; the events to tell caregivers."""
    current = {condition.key: condition for condition in found}
    events: list[AlertEvent] = []
    open_alerts = connection.execute(select(ALERTS).where(ALERTS.c.state.in_((OPEN, ACKED)))).all()
    alerted = set()
    for alert in open_alerts:
        key = (alert.home_id, alert.kind, alert.subject or "")
        alerted.add(key)
        if key in current:
            if alert.clear_since is not None:
                connection.execute(
                    update(ALERTS).where(ALERTS.c.id == alert.id).values(clear_since=None)
                )
            continue
        if alert.clear_since is None and not alert.urgent:
            connection.execute(
                update(ALERTS).where(ALERTS.c.id == alert.id).values(clear_since=now)
            )
            continue
        if alert.urgent or now - alert.clear_since >= CLEAR_FOR:
            connection.execute(
                update(ALERTS)
                .where(ALERTS.c.id == alert.id)
                .values(state=RESOLVED, resolved_at=now, next_escalation_at=None)
            )
            text = str((alert.details or {}).get("text", alert.kind))
            events.append(
                AlertEvent(alert.id, alert.home_id, alert.kind, text, alert.urgent, opened=False)
            )
    recently_resolved = {
        (row.home_id, row.kind, row.subject or "")
        for row in connection.execute(
            select(ALERTS.c.home_id, ALERTS.c.kind, ALERTS.c.subject).where(
                ALERTS.c.state == RESOLVED, ALERTS.c.resolved_at >= now - COOLDOWN
            )
        )
    }
    for key, condition in current.items():
        if key in alerted or key in recently_resolved or condition.hold_only:
            continue
        code = secrets.token_urlsafe(16)
        alert_id = connection.execute(
            insert(ALERTS)
            .values(
                home_id=condition.home_id,
                kind=condition.kind,
                subject=condition.subject,
                state=OPEN,
                opened_at=now,
                urgent=condition.urgent,
                escalation_level=0,
                next_escalation_at=now + escalate_after if condition.urgent else None,
                ack_code=code if condition.urgent else None,
                details={**condition.details, "text": condition.text},
            )
            .returning(ALERTS.c.id)
        ).scalar_one()
        events.append(
            AlertEvent(
                alert_id,
                condition.home_id,
                condition.kind,
                condition.text,
                condition.urgent,
                opened=True,
                ack_code=code if condition.urgent else None,
            )
        )
    return events
