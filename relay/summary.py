"""Daily summaries: what one home's period (one summary to the next) adds up to, in plain words.

``gather`` reads many homes at once (a few set-wide queries, not a query per home), so composing
the morning summaries of 10,000 homes stays in seconds (bench/summaries.py). ``render`` is pure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, or_, select

from .models import ActivityBucket, DeviceState, Home

#: A home that has not reported for this long is news in itself.
STALE_AFTER = timedelta(hours=2)
#: Activity buckets are 15 minutes long (relay/ingest.py).
BUCKET = timedelta(minutes=15)
#: Homes per IN list: far below every database's parameter limit.
CHUNK = 500


@dataclass(frozen=True, slots=True)
class Period:
    """A summary to write: this home, this stretch of time."""

    home_id: str
    start: datetime
    end: datetime


@dataclass(slots=True)
class DeviceIssue:
    """A device worth a line: low battery, or offline since when."""

    name: str
    room: str | None
    battery: int | None = None
    battery_state: str | None = None
    offline_since: datetime | None = None


@dataclass(slots=True)
class HomePeriod:
    """Everything one summary says."""

    home_id: str
    name: str
    zone: ZoneInfo
    start: datetime
    end: datetime
    count: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    rooms: dict[str, int] = field(default_factory=dict)
    longest_quiet: tuple[datetime, datetime] | None = None
    batteries: list[DeviceIssue] = field(default_factory=list)
    offline: list[DeviceIssue] = field(default_factory=list)
    last_report_at: datetime | None = None
    bridge_offline_since: datetime | None = None


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def gather(connection: Connection, periods: Sequence[Period]) -> list[HomePeriod]:
    """The facts of every period (sync: run it with ``run_sync``)."""
    if not periods:
        return []
    home_ids = sorted({p.home_id for p in periods})
    homes: dict[str, Any] = {}
    devices: defaultdict[str, list[Any]] = defaultdict(list)
    activity: defaultdict[str, list[Any]] = defaultdict(list)
    earliest = min(p.start for p in periods) - BUCKET
    latest = max(p.end for p in periods)
    h, d, a = Home.__table__, DeviceState.__table__, ActivityBucket.__table__
    for chunk in _chunks(home_ids):
        for row in connection.execute(select(h).where(h.c.id.in_(chunk))):
            homes[row.id] = row
        for row in connection.execute(
            select(
                d.c.home_id, d.c.name, d.c.room, d.c.battery, d.c.battery_state, d.c.offline_since
            )
            .where(d.c.home_id.in_(chunk))
            .where(or_(d.c.battery_state.in_(("low", "critical")), d.c.offline_since.isnot(None)))
            .order_by(d.c.name)
        ):
            devices[row.home_id].append(row)
        for row in connection.execute(
            select(a.c.home_id, a.c.room, a.c.count, a.c.first_at, a.c.last_at)
            .where(a.c.home_id.in_(chunk))
            .where(a.c.bucket_start >= earliest, a.c.bucket_start < latest)
            .order_by(a.c.home_id, a.c.first_at)
        ):
            activity[row.home_id].append(row)
    zones: dict[str, ZoneInfo] = {}
    facts = []
    for period in periods:
        home = homes.get(period.home_id)
        if home is None:
            continue
        zone = zones.get(home.timezone) or zones.setdefault(home.timezone, ZoneInfo(home.timezone))
        fact = HomePeriod(
            home.id,
            home.name,
            zone,
            period.start,
            period.end,
            last_report_at=home.last_report_at,
            bridge_offline_since=home.bridge_offline_since
            if home.bridge_reachable is False
            else None,
        )
        _add_activity(fact, activity.get(home.id, ()))
        for row in devices.get(home.id, ()):
            issue = DeviceIssue(row.name, row.room, row.battery, row.battery_state)
            if row.battery_state in ("low", "critical"):
                fact.batteries.append(issue)
            if row.offline_since is not None:
                fact.offline.append(
                    DeviceIssue(row.name, row.room, offline_since=row.offline_since)
                )
        facts.append(fact)
    return facts


def _add_activity(fact: HomePeriod, rows: Iterable[Any]) -> None:
    previous_end: datetime | None = fact.start
    longest = timedelta(0)
    for row in rows:
        if row.last_at < fact.start or row.first_at >= fact.end:
            continue
        fact.count += row.count
        fact.rooms[row.room or ""] = fact.rooms.get(row.room or "", 0) + row.count
        if fact.first_at is None or row.first_at < fact.first_at:
            fact.first_at = row.first_at
        if previous_end is not None and row.first_at - previous_end > longest:
            longest = row.first_at - previous_end
            fact.longest_quiet = (previous_end, row.first_at)
        if fact.last_at is None or row.last_at > fact.last_at:
            fact.last_at = row.last_at
        previous_end = max(previous_end or row.last_at, row.last_at)
    if fact.last_at is not None and fact.end - fact.last_at > longest:
        fact.longest_quiet = (fact.last_at, fact.end)


# -- words -----------------------------------------------------------------------------------


def _clock(when: datetime, zone: ZoneInfo) -> str:
    return when.astimezone(zone).strftime("%H:%M")


def _when(when: datetime, zone: ZoneInfo, now: datetime) -> str:
    local, today = when.astimezone(zone), now.astimezone(zone).date()
    if local.date() == today:
        return local.strftime("%H:%M")
    if local.date() == today - timedelta(days=1):
        return "yesterday " + local.strftime("%H:%M")
    return local.strftime("%a %d %b %H:%M")


def span_words(delta: timedelta) -> str:
    """'45 min', '3 h', '4 h 05 min'."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def _device(issue: DeviceIssue) -> str:
    return f"{issue.name} ({issue.room})" if issue.room else issue.name


def concerns(fact: HomePeriod, now: datetime) -> list[str]:
    """What needs attention, most serious first (empty: all normal)."""
    zone = fact.zone
    found = []
    if fact.last_report_at is None or now - fact.last_report_at > STALE_AFTER:
        since = f"since {_when(fact.last_report_at, zone, now)}" if fact.last_report_at else "ever"
        found.append(f"no reports {since}")
    if fact.bridge_offline_since is not None:
        found.append(f"bridge unreachable since {_when(fact.bridge_offline_since, zone, now)}")
    if fact.count == 0:
        found.append("no activity")
    critical = [b for b in fact.batteries if b.battery_state == "critical"]
    if critical:
        found.append(
            f"{len(critical)} battery critical"
            if len(critical) == 1
            else f"{len(critical)} batteries critical"
        )
    low = len(fact.batteries) - len(critical)
    if low:
        found.append("1 battery low" if low == 1 else f"{low} batteries low")
    if fact.offline:
        found.append(
            "1 device offline" if len(fact.offline) == 1 else f"{len(fact.offline)} devices offline"
        )
    return found


def render(
    fact: HomePeriod, now: datetime, *, late: bool = False, missed: int = 0
) -> tuple[str, str]:
    """(title, Markdown body) of one summary."""
    zone = fact.zone
    problems = concerns(fact, now)
    headline = "All normal" if not problems else "Needs attention: " + "; ".join(problems)
    title = f"{fact.name}: {headline}"
    if late:
        title = "[late] " + title
    lines = [f"**{headline}**", ""]
    day = f"{_when(fact.start, zone, now)} to {_when(fact.end, zone, now)} ({zone.key})"
    lines.append(f"Period: {day}")
    if late:
        lines.append(
            f"This summary was due at {_when(fact.end, zone, now)} and is sent late: "
            "the relay was not running then."
        )
    if missed:
        lines.append(
            f"{missed} earlier summar{'y was' if missed == 1 else 'ies were'} not sent while "
            "the relay was down; this one covers the latest day."
        )
    lines += ["", "**Activity**"]
    if fact.count and fact.first_at and fact.last_at:
        busiest, busiest_count = max(fact.rooms.items(), key=lambda item: item[1])
        lines.append(
            f"- {fact.count} movements, first {_clock(fact.first_at, zone)}, "
            f"last {_clock(fact.last_at, zone)}"
        )
        lines.append(f"- Busiest room: {busiest or 'unknown room'} ({busiest_count})")
    else:
        lines.append("- No activity at all in this period")
    if fact.longest_quiet is not None:
        quiet_start, quiet_end = fact.longest_quiet
        lines.append(
            f"- Longest quiet spell: {_clock(quiet_start, zone)} to {_clock(quiet_end, zone)} "
            f"({span_words(quiet_end - quiet_start)})"
        )
    lines += ["", "**Devices**"]
    if not fact.batteries and not fact.offline:
        lines.append("- All devices connected, no low batteries")
    for issue in fact.batteries:
        level = f"{issue.battery} %" if issue.battery is not None else "level unknown"
        lines.append(f"- Battery {issue.battery_state}: {_device(issue)}, {level}")
    for issue in fact.offline:
        assert issue.offline_since is not None
        lines.append(f"- Offline since {_when(issue.offline_since, zone, now)}: {_device(issue)}")
    lines += ["", "**Reporting**"]
    if fact.last_report_at is None:
        lines.append("- This home has never reported")
    else:
        lines.append(f"- Last report {_when(fact.last_report_at, zone, now)}")
    if fact.bridge_offline_since is not None:
        lines.append(
            f"- The Hue bridge is unreachable since {_when(fact.bridge_offline_since, zone, now)}"
        )
    return title, "\n".join(lines)
