"""What the dashboard's pages read: set-wide queries, a few statements per page.

Every query takes the viewer and reads only the homes the viewer may see (an operator: all;
a caregiver: the homes they are subscribed to). A home the viewer may not see reads exactly
like a home that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.notifications.alerting import HomeRules
from relay.storage.models import (
    ACKED,
    ACTIVITY,
    ALERTS,
    ATTEMPTS,
    CAREGIVERS,
    DEVICES,
    GOING_ON,
    HOMES,
    NOTIFICATIONS,
    OPEN,
    SUBSCRIPTIONS,
    UTCDateTime,
)

from .accounts import Viewer
from .usual import (
    DAYS,
    MIN_DAYS,
    Band,
    HourGrid,
    UsualBands,
    band_from,
    epoch,
    from_epoch,
    local_midnight,
)

LOW_BATTERY = ("low", "critical")
ALERT_HISTORY = 50
MESSAGES = 20
#: How home statuses sort (worst first).
SILENT, ATTENTION, LEARNING, NORMAL = 0, 1, 2, 3
#: A home is "learning" for as long as it has too few days for a usual range.
LEARNING_DAYS = MIN_DAYS
STALE_AFTER = HomeRules().stale_after


def _subscribed(viewer: Viewer) -> Select[Any]:
    return select(SUBSCRIPTIONS.c.home_id).where(
        SUBSCRIPTIONS.c.caregiver_id == viewer.caregiver_id
    )


def visible_homes(viewer: Viewer) -> ColumnElement[bool]:
    """The condition on ``homes.id`` that keeps a caregiver to their own homes."""
    if viewer.operator:
        return HOMES.c.id.is_not(None)
    return HOMES.c.id.in_(_subscribed(viewer))


def _visible(query: Select[Any], column: Any, viewer: Viewer) -> Select[Any]:
    """``query`` kept to the viewer's homes through its home id ``column``."""
    return query if viewer.operator else query.where(column.in_(_subscribed(viewer)))


@dataclass(slots=True)
class AlertLine:
    """An alert (open, acknowledged, or over) as the pages show it."""

    id: int
    kind: str
    text: str
    state: str
    urgent: bool
    opened_at: datetime
    acked_by: str | None
    acked_at: datetime | None


@dataclass(slots=True)
class Device:
    """A device of a home as last reported."""

    name: str
    room: str | None
    kind: str
    battery: int | None
    battery_state: str | None
    connectivity: str | None
    offline_since: datetime | None
    last_seen: datetime | None

    @property
    def low_battery(self) -> bool:
        """The bridge calls its battery low or critical."""
        return self.battery_state in LOW_BATTERY

    @property
    def offline(self) -> bool:
        """Not connected to the bridge's Zigbee mesh."""
        return self.connectivity not in (None, "connected")


#: A device row as ``Device`` takes it.
DEVICE_COLUMNS = (
    DEVICES.c.name,
    DEVICES.c.room,
    DEVICES.c.kind,
    DEVICES.c.battery,
    DEVICES.c.battery_state,
    DEVICES.c.connectivity,
    DEVICES.c.offline_since,
    DEVICES.c.last_seen,
)


@dataclass(slots=True)
class HomeLine:
    """One home on the Homes page."""

    id: str
    name: str
    zone: ZoneInfo
    created_at: datetime
    last_report_at: datetime | None
    last_activity_at: datetime | None
    bridge_reachable: bool | None
    bridge_offline_since: datetime | None
    stale_after: timedelta
    today: int = 0
    band: Band | None = None
    devices: list[Device] = field(default_factory=list)
    alerts: list[AlertLine] = field(default_factory=list)
    rank: int = NORMAL
    status: str = "All normal"
    reason: str = ""
    #: The usual range by this time of day (None: not known yet).
    usual: tuple[int, int] | None = None
    #: What the Homes page's cells say (worked out once in ``judge``, not in the template).
    activity: str = ""
    today_note: str = ""
    batteries: str = ""
    offline_note: str = ""
    bridge: str = ""

    @property
    def low_batteries(self) -> list[Device]:
        """Devices with a low or critical battery."""
        return [d for d in self.devices if d.low_battery]

    @property
    def offline_devices(self) -> list[Device]:
        """Devices off the mesh."""
        return [d for d in self.devices if d.offline]

    @property
    def css(self) -> str:
        """The status's colour class."""
        return ("silent", "attention", "learning", "normal")[self.rank]

    @property
    def today_words(self) -> str:
        """Today's activity against the usual range by now."""
        if self.usual is None:
            return "usual range not known yet"
        low, high = self.usual
        if self.today < low:
            return "below usual"
        return "above usual" if self.today > high else "as usual"

    def judge(self, now: datetime, local_now: datetime) -> None:
        """Status in words, how it sorts (worst first), and what each cell says
        (``local_now``: ``now`` in the home's zone)."""
        self.usual = self.band.by(local_now) if self.band else None
        problems: list[str] = []
        for alert in self.alerts:
            who = f" (acknowledged by {alert.acked_by})" if alert.state == ACKED else ""
            problems.append(f"{alert.text or alert.kind}{who}")
        if self.bridge_reachable is False and not any(a.kind == "bridge" for a in self.alerts):
            problems.append("bridge unreachable")
        offline = self.offline_devices if self.devices else []
        low = self.low_batteries if self.devices else []
        if offline:
            problems.append(f"{len(offline)} device{'s' * (len(offline) > 1)} offline")
        if low:
            problems.append(f"{len(low)} low batter{'ies' if len(low) > 1 else 'y'}")
        if self.last_report_at is None or now - self.last_report_at > self.stale_after:
            self.rank = SILENT
            self.status = (
                "Silent since " + when_local(self.last_report_at, self.zone, local_now)
                if self.last_report_at
                else "Silent: never reported"
            )
        elif problems:
            self.rank = ATTENTION
            self.status = "Needs attention"
        elif (
            days := (local_now.date() - self.created_at.astimezone(self.zone).date()).days
        ) < LEARNING_DAYS:
            self.rank = LEARNING
            self.status = f"Learning (day {days + 1} of {LEARNING_DAYS})"
        else:
            self.rank, self.status = NORMAL, "All normal"
        self.reason = "; ".join(problems)
        self._cells(now, local_now, offline, low)
        if self.rank == ATTENTION and any(a.urgent and a.state == OPEN for a in self.alerts):
            self.rank = SILENT  # an unacknowledged urgent alert is as bad as silence

    def _cells(
        self, now: datetime, local_now: datetime, offline: list[Device], low: list[Device]
    ) -> None:
        zone = self.zone
        self.activity = (
            f"{ago(self.last_activity_at, now)} "
            f"({when_local(self.last_activity_at, zone, local_now)})"
            if self.last_activity_at
            else "none yet"
        )
        self.today_note = (
            f"usual by now {self.usual[0]}-{self.usual[1]}: {self.today_words}"
            if self.usual
            else self.today_words
        )
        self.batteries = _listed(
            [f"{d.name} ({d.battery} %)" if d.battery is not None else d.name for d in low]
        )
        self.offline_note = _listed(
            [
                f"{d.name} since {when_local(d.offline_since, zone, local_now)}"
                if d.offline_since
                else d.name
                for d in offline
            ]
        )
        if self.bridge_reachable is None:
            self.bridge = "not known"
        elif self.bridge_reachable:
            self.bridge = "reachable"
        elif self.bridge_offline_since:
            self.bridge = (
                f"unreachable since {when_local(self.bridge_offline_since, zone, local_now)}"
            )
        else:
            self.bridge = "unreachable"


def _listed(names: list[str], shown: int = 3) -> str:
    """'a, b, c and 2 more'."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def when_local(moment: datetime, zone: ZoneInfo, local_now: datetime) -> str:
    """A past time in the home's zone: '09:14' today, 'yesterday 21:03', 'Mon 3 Nov 08:00'."""
    local = moment.astimezone(zone)
    days = (local_now.date() - local.date()).days
    if days == 0:
        return f"{local:%H:%M}"
    if days == 1:
        return f"yesterday {local:%H:%M}"
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def ago(moment: datetime, now: datetime) -> str:
    """How long ago, in words ('just now', '12 min ago', '3 h 5 min ago', '2 days ago')."""
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return "just now"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min ago"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min ago" if minutes else f"{hours} h ago"
    return f"{hours // 24} days ago"


async def homes_overview(
    connection: AsyncConnection, viewer: Viewer, bands: UsualBands, now: datetime
) -> list[HomeLine]:
    """Every home the viewer may see, worst first (then by name)."""
    rows = (
        await connection.execute(
            select(
                HOMES.c.id,
                HOMES.c.name,
                HOMES.c.timezone,
                epoch(connection, HOMES.c.created_at),
                epoch(connection, HOMES.c.last_report_at),
                epoch(connection, HOMES.c.last_activity_at),
                HOMES.c.bridge_reachable,
                epoch(connection, HOMES.c.bridge_offline_since),
                HOMES.c.settings,
            ).where(visible_homes(viewer))
        )
    ).all()
    lines: dict[str, HomeLine] = {}
    zones: dict[str, ZoneInfo] = {}
    # Timestamps are read as epoch seconds: parsing 2,000 rows of SQLite timestamp text
    # through SQLAlchemy's types cost more than the rest of the page.
    for home_id, name, key, created, report, activity, reachable, offline, settings in rows:
        zone = zones.get(key) or zones.setdefault(key, ZoneInfo(key))
        lines[home_id] = HomeLine(
            home_id,
            name,
            zone,
            from_epoch(created) or now,
            from_epoch(report),
            from_epoch(activity),
            reachable,
            from_epoch(offline),
            HomeRules.from_settings(settings).stale_after if settings else STALE_AFTER,
        )
    if not lines:
        return []
    problem_devices = _visible(
        select(DEVICES.c.home_id, *DEVICE_COLUMNS).where(
            DEVICES.c.battery_state.in_(LOW_BATTERY)
            | (DEVICES.c.connectivity.is_not(None) & (DEVICES.c.connectivity != "connected"))
        ),
        DEVICES.c.home_id,
        viewer,
    ).order_by(DEVICES.c.name)
    for home_id, *device in await connection.execute(problem_devices):
        lines[home_id].devices.append(Device(*device))
    for row in await connection.execute(_alert_query(viewer).where(ALERTS.c.state.in_(GOING_ON))):
        lines[row.home_id].alerts.append(_alert(row))
    # Today's activity: local midnight differs by zone. A correlated sum per home seeks the
    # (home_id, bucket_start) index from that home's own midnight (a join would scan).
    midnight = case(
        {
            key: literal(local_midnight(now.astimezone(zone).date(), zone), UTCDateTime())
            for key, zone in zones.items()
        },
        value=HOMES.c.timezone,
    )
    today = (
        select(func.sum(ACTIVITY.c.count))
        .where(ACTIVITY.c.home_id == HOMES.c.id, ACTIVITY.c.bucket_start >= midnight)
        .scalar_subquery()
    )
    for home_id, total in await connection.execute(
        select(HOMES.c.id, today).where(visible_homes(viewer))
    ):
        lines[home_id].today = int(total or 0)
    local_nows = {key: now.astimezone(zone) for key, zone in zones.items()}
    for line in lines.values():
        local_now = local_nows[line.zone.key]
        line.band = bands.get(line.id, local_now.date())
        line.judge(now, local_now)
    return sorted(lines.values(), key=lambda line: (line.rank, line.name.casefold(), line.id))


def _alert_query(viewer: Viewer) -> Select[Any]:
    return _visible(
        select(
            ALERTS.c.home_id,
            ALERTS.c.id,
            ALERTS.c.kind,
            ALERTS.c.details,
            ALERTS.c.state,
            ALERTS.c.urgent,
            ALERTS.c.opened_at,
            ALERTS.c.acked_by,
            ALERTS.c.acked_at,
        ),
        ALERTS.c.home_id,
        viewer,
    ).order_by(ALERTS.c.opened_at.desc(), ALERTS.c.id.desc())


def _alert(row: Any) -> AlertLine:
    text = str((row.details or {}).get("text", "")) or row.kind
    return AlertLine(
        row.id, row.kind, text, row.state, row.urgent, row.opened_at, row.acked_by, row.acked_at
    )


@dataclass(slots=True)
class Message:
    """A message about a home (summary, alert) and how its delivery went."""

    title: str
    kind: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    recipient: str


@dataclass(slots=True)
class RoomDay:
    """A room's activity today in 15-minute slots, and the same in words."""

    name: str
    slots: list[int]
    periods: list[str]

    @property
    def total(self) -> int:
        """Movements counted today in this room."""
        return sum(self.slots)


def periods(slots: list[int], midnight: datetime, zone: ZoneInfo) -> list[str]:
    """Runs of active slots as local 'HH:MM-HH:MM' (the gaps are what lies between)."""
    found, start = [], None
    for index, count in enumerate([*slots, 0]):
        if count and start is None:
            start = index
        elif not count and start is not None:
            begin = (midnight + timedelta(minutes=15 * start)).astimezone(zone)
            end = (midnight + timedelta(minutes=15 * index)).astimezone(zone)
            found.append(f"{begin:%H:%M}-{end:%H:%M}")
            start = None
    return found


@dataclass(slots=True)
class HomeDetail:
    """Everything on the Home page."""

    line: HomeLine
    all_devices: list[Device]
    rooms: list[RoomDay]
    hours: list[str]
    now_slot: int
    heatmap: list[tuple[date, list[int]]]
    heat_max: int
    daily: list[tuple[date, int]]
    history: list[AlertLine]
    next_summary: datetime | None
    messages: list[Message]


async def home_detail(
    connection: AsyncConnection, viewer: Viewer, home_id: str, bands: UsualBands, now: datetime
) -> HomeDetail | None:
    """The Home page's data, or None when the viewer may not see this home (or it is gone)."""
    row = (
        await connection.execute(select(HOMES).where(HOMES.c.id == home_id, visible_homes(viewer)))
    ).first()
    if row is None:
        return None
    zone = ZoneInfo(row.timezone)
    stale = HomeRules.from_settings(row.settings).stale_after
    line = HomeLine(
        row.id,
        row.name,
        zone,
        row.created_at,
        row.last_report_at,
        row.last_activity_at,
        row.bridge_reachable,
        row.bridge_offline_since,
        stale,
    )
    devices = [
        Device(*device)
        for device in await connection.execute(
            select(*DEVICE_COLUMNS)
            .where(DEVICES.c.home_id == home_id)
            .order_by(DEVICES.c.room, DEVICES.c.name)
        )
    ]
    line.devices = [d for d in devices if d.low_battery or d.offline]
    history = [
        _alert(alert)
        for alert in await connection.execute(
            _alert_query(viewer).where(ALERTS.c.home_id == home_id).limit(ALERT_HISTORY)
        )
    ]
    line.alerts = [a for a in history if a.state in GOING_ON]

    today = now.astimezone(zone).date()
    first_day = today - timedelta(days=DAYS)
    midnight = local_midnight(today, zone)
    tomorrow = local_midnight(today + timedelta(days=1), zone)
    slots = int((tomorrow - midnight).total_seconds() // 900)
    start = midnight.timestamp()
    rooms: dict[str, list[int]] = {}
    activity = (
        await connection.execute(
            select(ACTIVITY.c.room, epoch(connection, ACTIVITY.c.bucket_start), ACTIVITY.c.count)
            .where(
                ACTIVITY.c.home_id == home_id,
                ACTIVITY.c.bucket_start >= local_midnight(first_day, zone),
            )
            .order_by(ACTIVITY.c.bucket_start)
        )
    ).all()
    heat = HourGrid(zone, first_day, DAYS + 1).fold((at, count) for _, at, count in activity)
    for room, at, count in activity:
        if at >= start:
            slot = min(int((at - start) // 900), slots - 1)
            rooms.setdefault(room, [0] * slots)[slot] += count
    line.today = sum(heat[-1])
    line.band = band_from(heat[:-1], today, row.created_at.astimezone(zone).date())
    bands.put(home_id, today, line.band)
    line.judge(now, now.astimezone(zone))

    summary = await connection.scalar(
        select(func.min(SUBSCRIPTIONS.c.next_summary_due)).where(
            SUBSCRIPTIONS.c.home_id == home_id,
            SUBSCRIPTIONS.c.caregiver_id == viewer.caregiver_id,
        )
    )
    messages = await _messages(connection, viewer, home_id)
    days = [first_day + timedelta(days=offset) for offset in range(1, DAYS + 1)]
    heatmap = list(zip(days, heat[1:], strict=True))
    return HomeDetail(
        line=line,
        all_devices=devices,
        rooms=[
            RoomDay(name, cells, periods(cells, midnight, zone))
            for name, cells in sorted(rooms.items(), key=lambda item: item[0].casefold())
        ],
        hours=[
            f"{(midnight + timedelta(minutes=15 * slot)).astimezone(zone):%H}"
            for slot in range(0, slots, 4)
        ],
        now_slot=min(slots - 1, int((now - midnight).total_seconds() // 900)),
        heatmap=heatmap,
        heat_max=max((max(hours) for _, hours in heatmap), default=0),
        daily=[(day, sum(hours)) for day, hours in heatmap],
        history=history,
        next_summary=summary,
        messages=messages,
    )


async def _messages(connection: AsyncConnection, viewer: Viewer, home_id: str) -> list[Message]:
    """The newest messages about the home: the viewer's own (an operator's: everyone's)."""
    last_attempt = (
        select(func.max(ATTEMPTS.c.attempted_at))
        .where(ATTEMPTS.c.notification_id == NOTIFICATIONS.c.id)
        .scalar_subquery()
    )
    query = (
        select(
            NOTIFICATIONS.c.title,
            NOTIFICATIONS.c.kind,
            NOTIFICATIONS.c.status,
            NOTIFICATIONS.c.created_at,
            func.coalesce(NOTIFICATIONS.c.sent_at, last_attempt),
            NOTIFICATIONS.c.attempts,
            NOTIFICATIONS.c.last_error,
            CAREGIVERS.c.name,
        )
        .join(CAREGIVERS, CAREGIVERS.c.id == NOTIFICATIONS.c.caregiver_id)
        .where(NOTIFICATIONS.c.home_id == home_id)
        .order_by(NOTIFICATIONS.c.created_at.desc(), NOTIFICATIONS.c.id.desc())
        .limit(MESSAGES)
    )
    if not viewer.operator:
        query = query.where(NOTIFICATIONS.c.caregiver_id == viewer.caregiver_id)
    return [Message(*row) for row in await connection.execute(query)]


async def alert_home(connection: AsyncConnection, viewer: Viewer, alert_id: int) -> str | None:
    """The home of an alert the viewer may see (None: no such alert for this viewer)."""
    found: str | None = await connection.scalar(
        _visible(select(ALERTS.c.home_id), ALERTS.c.home_id, viewer).where(ALERTS.c.id == alert_id)
    )
    return found


@dataclass(slots=True)
class Me:
    """The Me page: the caregiver's settings (never the channel's URL itself)."""

    name: str
    operator: bool
    channel: str
    quiet_start: str | None
    quiet_end: str | None
    digest: bool
    has_password: bool
    failing_since: datetime | None
    homes: list[tuple[str, str, str | None]]


async def me(connection: AsyncConnection, viewer: Viewer, channel: str) -> Me:
    """The viewer's own settings and subscriptions."""
    row = (
        await connection.execute(select(CAREGIVERS).where(CAREGIVERS.c.id == viewer.caregiver_id))
    ).one()
    homes = (
        await connection.execute(
            select(HOMES.c.id, HOMES.c.name, SUBSCRIPTIONS.c.summary_at)
            .join(SUBSCRIPTIONS, and_(SUBSCRIPTIONS.c.home_id == HOMES.c.id))
            .where(SUBSCRIPTIONS.c.caregiver_id == viewer.caregiver_id)
            .order_by(HOMES.c.name)
        )
    ).all()
    return Me(
        row.name,
        row.role == "operator",
        channel,
        row.quiet_start,
        row.quiet_end,
        row.digest,
        row.password_hash is not None,
        row.failing_since,
        [(h.id, h.name, h.summary_at) for h in homes],
    )
