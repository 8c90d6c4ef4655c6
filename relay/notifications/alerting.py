"""Alert rules: which conditions hold for which homes now, and the alerts they open and resolve.

``conditions`` reads the homes some rule may hold for at once (set-wide queries). ``reconcile``
turns the conditions into alert rows with hysteresis: a condition opens an alert at once (each
rule already demands that it lasted: 3 hours without activity, 60 minutes offline …), but a
cleared condition only resolves it after ``CLEAR_FOR`` (good news can wait five minutes; a
flapping Zigbee link must not send a message a minute), and an alert resolved less than
``COOLDOWN`` ago is not reopened.
Inactivity is the urgent one: activity resolves it at once, quiet hours do not hold it back,
and it walks the escalation chain until someone acknowledges it.

Inactivity and "quiet" (far less activity than usual today) follow the verdict of the home's own
detector (custom_components/hpoll/activity/detector.py) in its newest report, so caregivers are
told what the home's Home Assistant shows. The relay adds what only it can see: a home that
stopped reporting (stale) and a bridge the home reports unreachable; while either holds, or the
newest report is older than FRESH_REPORT, no activity alert opens and open ones stay open.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
import itertools
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, func, insert, or_, select, update

from ..messages.words import span as span_words
from ..storage.models import ACKED, ALERTS, DEVICES, HOMES, IN_LIST, OPEN, RESOLVED
from .schedule import in_window, parse_hhmm, window_start

CLEAR_FOR = timedelta(minutes=5)
COOLDOWN = timedelta(minutes=30)
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
    opened_at: datetime | None = None
    #: What the rule stored (relay/messages/facts.py lists the keys per kind).
    details: dict[str, Any] = field(default_factory=dict)
    #: Resolved: when the cause went away (the first evaluation that found it gone).
    ended_at: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None


def _since(when: datetime, zone: ZoneInfo) -> str:
    return when.astimezone(zone).strftime("%a %H:%M")


def conditions(
    connection: Connection, now: datetime, listening_since: datetime | None = None
) -> list[Condition]:
    """Every condition that holds now and matters, for every home.

    ``listening_since``: when this relay started. A home cannot have reported to a relay that
    was down, so silence counts from then at the earliest (no "stale" storm after a restart).
    Only the homes :func:`_may_hold` selects are read: every other home has no open alert and
    could hold only conditions that keep an open alert open (reading all 100,000 homes took
    two thirds of each planning pass).
    """
    devices: defaultdict[str, list[Any]] = defaultdict(list)
    for row in connection.execute(select(DEVICES).where(_TROUBLED)):
        devices[row.home_id].append(row)
    found: list[Condition] = []
    for home in connection.execute(select(*_JUDGED_COLUMNS).where(_may_hold(now))):
        found += judge(home, devices.get(home.id, ()), now, listening_since)
    return found


#: Devices some rule may be about: a low battery, or offline (for how long, the rule decides).
_TROUBLED = DEVICES.c.battery_state.in_(("low", "critical")) | DEVICES.c.offline_since.isnot(None)
#: Every column but the counters: decoding homes' counters JSON each minute for nothing.
_JUDGED_COLUMNS = [column for column in HOMES.c if column.name != "counters"]


def _may_hold(now: datetime) -> ColumnElement[bool]:
    """Homes for which some rule may hold now, or whose open alert must be kept or resolved.

    A superset, cheap to decide in SQL: each term is implied by a rule of :func:`judge` under
    the default settings (a silence of at least ``stale_after``, ``bridge_after``,
    ``inactivity``; a verdict that says inactive or a quiet day), and homes with their own
    settings are always read. :func:`judge` decides.
    """
    rules = DEFAULT_RULES
    verdict = HOMES.c.verdict
    state = verdict["state"].as_string()
    return or_(
        HOMES.c.settings.isnot(None),
        HOMES.c.id.in_(select(ALERTS.c.home_id).where(ALERTS.c.state.in_((OPEN, ACKED)))),
        HOMES.c.id.in_(select(DEVICES.c.home_id).where(_TROUBLED)),
        func.coalesce(HOMES.c.last_report_at, HOMES.c.created_at) <= now - rules.stale_after,
        and_(
            HOMES.c.bridge_reachable.is_(False),
            HOMES.c.bridge_offline_since <= now - rules.bridge_after,
        ),
        # No verdict (SQL NULL, JSON null, or none stored): the fixed rule.
        and_(state.is_(None), HOMES.c.last_activity_at <= now - rules.inactivity),
        state == "inactive",
        verdict["low_activity_today"].as_boolean().is_(True),
    )


def judge(
    home: Any, devices: Iterable[Any], now: datetime, listening_since: datetime | None
) -> list[Condition]:
    """Every condition that holds now for one home (``home``: its ``homes`` row; ``devices``:
    its troubled devices)."""
    rules = HomeRules.from_settings(home.settings)
    zone = ZoneInfo(home.timezone)
    reporting = _reporting(home, rules, zone, now, listening_since)
    found = reporting + _devices(home.id, devices, rules, zone, now)
    current = (
        home.last_report_sent_at is not None and now - home.last_report_sent_at <= FRESH_REPORT
    )
    # Nothing new can be judged of a home that is silent, behind, or blind to its bridge.
    blind = not current or home.bridge_reachable is False
    blind = blind or any(c.kind == "stale" for c in reporting)
    if home.verdict is not None:
        found += _judged(home, home.verdict, zone, now, blind=blind)
    else:
        found += _fixed_rule(home, rules, zone, now, blind=blind)
    return found


def _held(home_id: str) -> list[Condition]:
    """Open activity alerts stay open, and none opens: nothing says the person is fine."""
    return [
        Condition(home_id, "inactivity", "", "", urgent=True, hold_only=True),
        Condition(home_id, "quiet", "", "", hold_only=True),
    ]


def _judged(
    home: Any, verdict: dict[str, Any], zone: ZoneInfo, now: datetime, *, blind: bool
) -> list[Condition]:
    """The home's own inactivity detector, as its newest report says (the same verdict its Home
    Assistant shows): ``inactive`` opens the urgent alert, a low-activity day the quiet one."""
    state = verdict.get("state")
    if blind or state == "unknown":
        return _held(home.id)
    if state == "inactive":
        since = _moment(verdict.get("since")) or home.last_activity_at
        text = (
            f"no activity since {_since(since, zone)} ({span_words(now - since)})"
            if since is not None
            else "no activity"
        )
        details = {key: verdict.get(key) for key in ("reason", "limit_minutes", "learning")}
        details["since"] = since.isoformat() if since is not None else None
        return [Condition(home.id, "inactivity", "", text, urgent=True, details=details)]
    if verdict.get("low_activity_today") and not verdict.get("away"):
        return [
            Condition(
                home.id,
                "quiet",
                "",
                "far less activity today than this home usually has by now",
                details={"learning": verdict.get("learning")},
            )
        ]
    return []


def _moment(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _fixed_rule(
    home: Any, rules: HomeRules, zone: ZoneInfo, now: datetime, *, blind: bool
) -> list[Condition]:
    """Homes whose integration sends no verdict (older versions): the fixed threshold within
    the active hours."""
    last = home.last_activity_at
    if last is None:
        return []  # no activity ever seen: nothing to judge by
    if blind or not in_window(now, zone, rules.active_start, rules.active_end):
        return _held(home.id) if blind or now - last >= rules.inactivity else []
    # Only the active hours count: the night before is not "3 hours without activity".
    if now - max(last, window_start(now, zone, rules.active_start)) < rules.inactivity:
        return []
    text = f"no activity since {_since(last, zone)} ({span_words(now - last)})"
    return [
        Condition(home.id, "inactivity", "", text, urgent=True, details={"since": last.isoformat()})
    ]


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
                details={"since": reported.isoformat()},
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
                home.id,
                "bridge",
                "",
                f"Hue bridge unreachable since {_since(offline_since, zone)}",
                details={"since": offline_since.isoformat()},
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
                    details={
                        **_device_details(device),
                        "state": device.battery_state,
                        "battery": device.battery,
                    },
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
                    details={**_device_details(device), "since": since.isoformat()},
                )
            )
    return found


def _device_details(device: Any) -> dict[str, Any]:
    return {"device": device.name, "room": device.room, "device_kind": device.kind}


def reconcile(
    connection: Connection, found: list[Condition], now: datetime, escalate_after: timedelta
) -> list[AlertEvent]:
    """Open, keep, and resolve alerts to match ``found``; the events to tell caregivers."""
    current = {condition.key: condition for condition in found}
    events: list[AlertEvent] = []
    open_alerts = connection.execute(select(ALERTS).where(ALERTS.c.state.in_((OPEN, ACKED)))).all()
    alerted = set()
    # Alert ids per change: one statement each for all (the end of a regional outage clears
    # every home's alert at once).
    holding, clearing, resolving = [], [], []
    for alert in open_alerts:
        key = (alert.home_id, alert.kind, alert.subject or "")
        alerted.add(key)
        if key in current:
            if alert.clear_since is not None:
                holding.append(alert.id)
            continue
        if alert.clear_since is None and not alert.urgent:
            clearing.append(alert.id)
            continue
        if alert.urgent or now - alert.clear_since >= CLEAR_FOR:
            resolving.append(alert.id)
            details = dict(alert.details or {})
            events.append(
                AlertEvent(
                    alert.id,
                    alert.home_id,
                    alert.kind,
                    str(details.get("text", alert.kind)),
                    alert.urgent,
                    opened=False,
                    opened_at=alert.opened_at,
                    details=details,
                    ended_at=alert.clear_since or now,
                    acked_by=alert.acked_by,
                    acked_at=alert.acked_at,
                )
            )
    _change(connection, holding, clear_since=None)
    _change(connection, clearing, clear_since=now)
    _change(connection, resolving, state=RESOLVED, resolved_at=now, next_escalation_at=None)
    recently_resolved = {
        (row.home_id, row.kind, row.subject or "")
        for row in connection.execute(
            select(ALERTS.c.home_id, ALERTS.c.kind, ALERTS.c.subject).where(
                ALERTS.c.state == RESOLVED, ALERTS.c.resolved_at >= now - COOLDOWN
            )
        )
    }
    opening = [
        condition
        for key, condition in current.items()
        if key not in alerted and key not in recently_resolved and not condition.hold_only
    ]
    if not opening:
        return events
    # One statement however many open (a regional outage makes every home stale at once); the
    # rows come back in any order (ordered, SQLite would insert them one at a time).
    inserted = connection.execute(
        insert(ALERTS).returning(ALERTS.c.id, ALERTS.c.home_id, ALERTS.c.kind, ALERTS.c.subject),
        [
            {
                "home_id": condition.home_id,
                "kind": condition.kind,
                "subject": condition.subject,
                "state": OPEN,
                "opened_at": now,
                "urgent": condition.urgent,
                "escalation_level": 0,
                "next_escalation_at": now + escalate_after if condition.urgent else None,
                "details": {**condition.details, "text": condition.text},
            }
            for condition in opening
        ],
    )
    ids = {(row.home_id, row.kind, row.subject or ""): row.id for row in inserted}
    events += [
        AlertEvent(
            ids[condition.key],
            condition.home_id,
            condition.kind,
            condition.text,
            condition.urgent,
            opened=True,
            opened_at=now,
            details={**condition.details, "text": condition.text},
        )
        for condition in opening
    ]
    return events


def _change(connection: Connection, alert_ids: list[int], **values: Any) -> None:
    """Set ``values`` on these alerts (``IN_LIST`` ids a statement)."""
    for chunk in itertools.batched(alert_ids, IN_LIST):
        connection.execute(update(ALERTS).where(ALERTS.c.id.in_(chunk)).values(**values))
