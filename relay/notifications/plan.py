"""What caregivers are sent, and when: summaries due, alerts opened or resolved, escalations.

Every tick (a minute) ``plan`` runs in ONE transaction: it decides what to say and writes it to
the outbox; then the dispatcher sends what is due. On PostgreSQL the transaction takes an
advisory lock, so of two replicas one plans at a time, and the other then sees its work; each
summary's slot is also claimed by a compare-and-swap on ``next_summary_due`` and every message
has a unique ``dedup_key``, so nothing is planned twice even without the lock.

Summaries missed while the relay was down are sent late (marked so), once: several missed days
fold into one message about the latest day. A relay that plans every ``interval`` composes a
summary in the pass at its minute, or, when more are due at one minute than that pass composes
(``PLAN_AT_ITS_TIME``), the excess in the passes before (``PLAN_AHEAD_PER_PASS`` each), as late
as they have room, never more than ``PLAN_AHEAD`` early, due at their minute: of 12,000
summaries at 08:00 the pass at 08:00 composes 1,000, the six before it the rest. A summary
written ahead tells of the day up to when it was written and says so; the minutes until its
time are in no summary (alerts still watch them). Alerts opened in one tick fold into one
message per caregiver, so a restart after a long outage is one message each, not a storm.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
import hashlib
import itertools
import logging
import time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, or_, select, text, update

from ..messages import compose
from ..messages.document import Document
from ..messages.facts import AlertFacts, Blindness
from ..storage.models import (
    ACKED,
    ALERTS,
    CAREGIVERS,
    GOING_ON,
    HOMES,
    IN_LIST,
    NOTIFICATIONS,
    SUBSCRIPTIONS,
)
from .alerting import AlertEvent, conditions, reconcile
from .escalate import (
    Urgent,
    Watcher,
    escalate,
    home_facts,
    load_homes,
    load_watchers,
    tell_urgent,
)
from .outbox import Message, enqueue_many
from .schedule import in_window, next_occurrence, occurrence, parse_hhmm, window_end
from .summary import Period, gather
from .visibility import movements_after, track

_LOGGER = logging.getLogger(__name__)


#: A summary sent later than this after its time says it is late.
LATE_AFTER = timedelta(minutes=10)
#: An acknowledgement older than this is not announced any more (bounds each tick's work).
ANNOUNCE_ACK_WITHIN = timedelta(days=1)
#: The summaries of one minute its own pass composes (about half a second of Python each
#: thousand on an idle machine, measured at 100,000 homes: bench/scale.py): that pass also
#: sends what was written ahead for the minute (with 4,000 of 12,000 left to it, the pass took
#: 10.5 s) ...
PLAN_AT_ITS_TIME = 1_000
#: ... and a pass before composes at most this many ahead of their minute (at 100,000 homes
#: while the replicas ingest at 70 % of what they sustain, a pass took ~3 s plus ~2.5 ms a
#: summary: 4,000 a pass made passes of 11-13.7 s, over the 10 s of every minute a pass may
#: take at 100,000 homes, issue 16) ...
PLAN_AHEAD_PER_PASS = 2_000
#: ... never further ahead than this (what a summary then misses of its day): at most 31,000
#: summaries at one minute are written within these bounds (1,000 + 15 x 2,000); of a larger
#: crowd, the first pass that sees it writes the excess too (a longer pass, logged).
PLAN_AHEAD = timedelta(minutes=15)
#: A pass that starts this little after a summary's time composes it as due at its time.
AT_ITS_TIME = timedelta(seconds=1)
#: Any 64-bit number that no other application on the same PostgreSQL uses.
PLAN_LOCK = 0x68706F6C6C


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """How the relay notifies (``HPOLL_RELAY_ESCALATE_MINUTES``, ``HPOLL_RELAY_PUBLIC_URL``)."""

    escalate_after: timedelta = timedelta(minutes=15)
    #: Where caregivers' acknowledgement links point; without it, acknowledge with the CLI.
    public_url: str | None = None


@dataclass(slots=True)
class PlanResult:
    """What one planning pass wrote to the outbox."""

    summaries: int = 0
    alert_messages: int = 0
    escalations: int = 0
    events: list[AlertEvent] = field(default_factory=list)
    #: Seconds each step took, in order (what a slow pass spent its time on).
    steps: dict[str, float] = field(default_factory=dict)

    def step(self, name: str, started: float) -> float:
        """Record that step ``name`` ran from ``started`` (a ``perf_counter``) to now; returns
        now, where the next step starts."""
        now = time.perf_counter()
        self.steps[name] = now - started
        return now

    def describe(self) -> str:
        """What the pass wrote and where its time went, for a log line."""
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.steps.items())
        return (
            f"summaries {self.summaries}, alert events {len(self.events)}, "
            f"alert messages {self.alert_messages}, escalations {self.escalations} ({steps})"
        )


def plan(
    connection: Connection,
    now: datetime,
    settings: NotifySettings,
    listening_since: datetime | None = None,
    interval: timedelta | None = None,
) -> PlanResult:
    """Decide and record everything due at ``now`` (sync; one transaction via ``run_sync``);
    ``interval``: how often passes run (summaries of a crowded minute are then written ahead)."""
    plan_lock(connection)
    result = PlanResult()
    started = time.perf_counter()
    blind = track(connection, now, listening_since)
    started = result.step("visibility", started)
    result.summaries = plan_summaries(connection, now, interval)
    started = result.step("summaries", started)
    found = conditions(connection, now, listening_since)
    started = result.step("conditions", started)
    result.events = reconcile(connection, found, now, settings.escalate_after)
    started = result.step("reconcile", started)
    result.alert_messages = tell_about(connection, result.events, now, settings)
    result.alert_messages += tell_blind(connection, blind, now)
    result.alert_messages += tell_acknowledged(connection, now)
    started = result.step("alert messages", started)
    result.escalations = escalate(connection, now, settings)
    result.step("escalations", started)
    return result


def plan_lock(connection: Connection) -> None:
    """On PostgreSQL, wait until no other replica plans (held to the end of the transaction;
    taking it again in the same transaction returns at once)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PLAN_LOCK})


# -- summaries -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _DueSummary:
    subscription_id: int
    caregiver_id: int
    #: What it tells of: the day to its time, or to now if written ahead.
    period: Period
    #: When it is due.
    slot: datetime
    late: bool
    missed: int


def plan_summaries(connection: Connection, now: datetime, interval: timedelta | None = None) -> int:
    """Write every summary that is due, and with ``interval`` those of a crowded minute ahead
    (due at their minute); returns how many."""
    horizon = now + PLAN_AHEAD if interval else now
    rows = connection.execute(
        select(
            SUBSCRIPTIONS.c.id,
            SUBSCRIPTIONS.c.home_id,
            SUBSCRIPTIONS.c.caregiver_id,
            SUBSCRIPTIONS.c.summary_at,
            SUBSCRIPTIONS.c.next_summary_due,
            HOMES.c.timezone,
        )
        .join(HOMES, HOMES.c.id == SUBSCRIPTIONS.c.home_id)
        .where(SUBSCRIPTIONS.c.summary_at.isnot(None))
        .where(
            or_(
                SUBSCRIPTIONS.c.next_summary_due.is_(None),
                SUBSCRIPTIONS.c.next_summary_due <= horizon,
            )
        )
    ).all()
    if interval:
        ahead = sorted((row for row in rows if _after(row, now)), key=_slot_and_caregiver)
        count = _plan_ahead([row.next_summary_due for row in ahead], now, interval)
        if count > PLAN_AHEAD_PER_PASS:
            _LOGGER.warning(
                "%d summaries are due in the next %d minutes, more than the passes before their "
                "minutes write ahead (%d each); this pass writes %d of them and takes longer",
                len(ahead),
                PLAN_AHEAD // timedelta(minutes=1),
                PLAN_AHEAD_PER_PASS,
                count,
            )
        while 0 < count < len(ahead) and _same_message(ahead[count - 1], ahead[count]):
            count += 1  # a caregiver's homes at one minute stay together (a digest is one)
        rows = [row for row in rows if not _after(row, now)] + ahead[:count]
    zones: dict[str, ZoneInfo] = {}
    candidates: list[_DueSummary] = []
    moves: defaultdict[tuple[datetime | None, datetime], list[int]] = defaultdict(list)
    for row in rows:
        zone = zones.get(row.timezone) or zones.setdefault(row.timezone, ZoneInfo(row.timezone))
        at = parse_hhmm(row.summary_at)
        old = row.next_summary_due
        if old is None:  # new subscription: its first summary is the next one
            moves[(None, next_occurrence(at, zone, now)[1])].append(row.id)
            continue
        missed, slot = 0, old
        while (following := next_occurrence(at, zone, slot)[1]) <= now:
            missed, slot = missed + 1, following
        moves[(old, following)].append(row.id)
        day = slot.astimezone(zone).date()
        candidates.append(
            _DueSummary(
                row.id,
                row.caregiver_id,
                Period(row.home_id, occurrence(day - timedelta(days=1), at, zone), min(slot, now)),
                slot,
                now - slot > LATE_AFTER,
                missed,
            )
        )
    claimed = _claim_slots(connection, moves)
    due = [summary for summary in candidates if summary.subscription_id in claimed]
    facts = {(f.home_id, f.start, f.end): f for f in gather(connection, [d.period for d in due])}
    digests = _digest_caregivers(connection, {summary.caregiver_id for summary in due})
    messages: list[Message] = []
    bundles: defaultdict[int, list[tuple[_DueSummary, Document]]] = defaultdict(list)
    for summary in due:
        fact = facts.get((summary.period.home_id, summary.period.start, summary.period.end))
        if fact is None:
            continue
        document = compose.summary(fact, now, late=summary.late, missed=summary.missed)
        if summary.caregiver_id in digests:
            bundles[summary.caregiver_id].append((summary, document))
            continue
        messages.append(
            Message(
                summary.caregiver_id,
                summary.period.home_id,
                "summary",
                f"summary:{summary.subscription_id}:{summary.slot.isoformat()}",
                document,
                due_at=max(now, summary.slot),
            )
        )
    messages += [_digest(caregiver, parts, now) for caregiver, parts in bundles.items()]
    return enqueue_many(connection, messages, now)


def _after(row: Any, moment: datetime) -> bool:
    return row.next_summary_due is not None and row.next_summary_due > moment


def _slot_and_caregiver(row: Any) -> tuple[datetime, int, int]:
    return row.next_summary_due, row.caregiver_id, row.id


def _same_message(row: Any, other: Any) -> bool:
    """Whether two subscriptions' summaries may go in one digest: one caregiver, one minute."""
    return bool(_slot_and_caregiver(row)[:2] == _slot_and_caregiver(other)[:2])


def _plan_ahead(slots: list[datetime], now: datetime, interval: timedelta) -> int:
    """How many of the earliest ``slots`` (sorted, all after ``now``) this pass must write: the
    ones the later passes (on the grid of ``interval``) cannot, when every summary is left to
    the last pass at or before its time (``AT_ITS_TIME`` after it counts: passes start a little
    after the grid; ``PLAN_AT_ITS_TIME`` of them), or else the latest before with room
    (``PLAN_AHEAD_PER_PASS`` each)."""
    grid = now - timedelta(seconds=now.timestamp() % interval.total_seconds())  # this pass's
    pass_index, room = 0, 0
    for placed, slot in enumerate(reversed(slots)):
        latest = (slot + AT_ITS_TIME - grid) // interval  # the last later pass by the slot
        if not pass_index or latest < pass_index:
            at_its_time = grid + latest * interval >= slot - AT_ITS_TIME
            pass_index, room = latest, PLAN_AT_ITS_TIME if at_its_time else PLAN_AHEAD_PER_PASS
        elif room == 0:
            pass_index, room = pass_index - 1, PLAN_AHEAD_PER_PASS
        if pass_index < 1:
            return len(slots) - placed
        room -= 1
    return 0


def _digest_caregivers(connection: Connection, caregiver_ids: set[int]) -> set[int]:
    """The caregivers among ``caregiver_ids`` who want digests (IN_LIST at a time)."""
    digests: set[int] = set()
    for chunk in itertools.batched(sorted(caregiver_ids), IN_LIST):
        digests.update(
            connection.execute(
                select(CAREGIVERS.c.id).where(
                    CAREGIVERS.c.id.in_(chunk), CAREGIVERS.c.digest.is_(True)
                )
            ).scalars()
        )
    return digests


def _digest(caregiver_id: int, parts: list[tuple[_DueSummary, Document]], now: datetime) -> Message:
    """Several homes' summaries as one message: the headlines first, then each home."""
    slots = ",".join(sorted(f"{s.subscription_id}:{s.slot.isoformat()}" for s, _ in parts))
    key = hashlib.sha256(slots.encode()).hexdigest()[:32]
    document = compose.digest([document for _, document in parts])
    due = max(now, *(summary.slot for summary, _ in parts))
    return Message(caregiver_id, None, "summary", f"digest:{caregiver_id}:{key}", document, due)


def _claim_slots(
    connection: Connection, moves: dict[tuple[datetime | None, datetime], list[int]]
) -> set[int]:
    """Move each subscription's next summary from old to new, if nobody else did (a
    compare-and-swap; RETURNING says which rows moved). Subscriptions sharing a timezone and a
    time share their old and new slot, so this is a few statements, not one per home."""
    column = SUBSCRIPTIONS.c.next_summary_due
    claimed: set[int] = set()
    for (old, new), ids in moves.items():
        for chunk in itertools.batched(ids, IN_LIST):
            claimed.update(
                connection.execute(
                    update(SUBSCRIPTIONS)
                    .where(SUBSCRIPTIONS.c.id.in_(chunk))
                    .where(column.is_(None) if old is None else column == old)
                    .values(next_summary_due=new)
                    .returning(SUBSCRIPTIONS.c.id)
                ).scalars()
            )
    return claimed


# -- alerts ----------------------------------------------------------------------------------


def _facts(connection: Connection, events: list[AlertEvent], now: datetime) -> list[AlertFacts]:
    """What messages say about alert events (the movement that ended a silence, too), in
    order; the movements in a few statements for all."""
    facts = [
        AlertFacts(
            event.alert_id,
            event.kind,
            event.opened_at or now,
            event.details,
            event.urgent,
            None if event.opened else event.ended_at,
            event.acked_by,
            event.acked_at,
        )
        for event in events
    ]
    silences = {
        index: (event.home_id, fact.detail_time() or fact.opened_at)
        for index, (event, fact) in enumerate(zip(events, facts, strict=True))
        if not event.opened and event.kind == "inactivity"
    }
    for index, movement in movements_after(connection, silences).items():
        facts[index] = replace(facts[index], new_movement=movement)
    return facts


def tell_about(
    connection: Connection, events: list[AlertEvent], now: datetime, settings: NotifySettings
) -> int:
    """Outbox messages for this tick's alert events; returns how many."""
    if not events:
        return 0
    home_ids = {event.home_id for event in events}
    watchers, homes = load_watchers(connection, home_ids), load_homes(connection, home_ids)
    told = _told(connection, [e.alert_id for e in events if e.urgent and not e.opened])
    urgent: list[Urgent] = []
    messages: list[Message] = []
    folded: defaultdict[int, list[tuple[AlertEvent, AlertFacts, Watcher]]] = defaultdict(list)
    for event, facts in zip(events, _facts(connection, events, now), strict=True):
        home = homes[event.home_id]
        chain = [w for w in watchers.get(event.home_id, ()) if event.kind in w.kinds]
        if event.urgent and event.opened:
            if chain:
                urgent.append(Urgent(facts, home, chain, level=0))
            continue
        if event.urgent:  # over: everybody who was told hears the good news
            document = compose.urgent_over(facts, home_facts(home), now)
            messages += [
                Message(
                    caregiver_id,
                    event.home_id,
                    "resolved",
                    f"alert:{event.alert_id}:resolved:{caregiver_id}",
                    document,
                    due_at=now,
                    alert_id=event.alert_id,
                )
                for caregiver_id in told.get(event.alert_id, ())
            ]
            continue
        for watcher in chain:
            folded[watcher.caregiver_id].append((event, facts, watcher))
    messages += [
        _folded_message(caregiver_id, items, homes, now) for caregiver_id, items in folded.items()
    ]
    # One statement for all (a regional outage tells 100,000 caregivers at once).
    written = tell_urgent(connection, urgent, now=now, settings=settings)
    return written + enqueue_many(connection, messages, now)


def _told(connection: Connection, alert_ids: list[int]) -> dict[int, list[int]]:
    """The caregivers who were sent something about each alert (IN_LIST alerts a statement)."""
    told: defaultdict[int, list[int]] = defaultdict(list)
    for chunk in itertools.batched(sorted(set(alert_ids)), IN_LIST):
        rows = connection.execute(
            select(NOTIFICATIONS.c.alert_id, NOTIFICATIONS.c.caregiver_id)
            .where(NOTIFICATIONS.c.alert_id.in_(chunk))
            .distinct()
            .order_by(NOTIFICATIONS.c.alert_id, NOTIFICATIONS.c.caregiver_id)
        )
        for alert_id, caregiver_id in rows:
            told[alert_id].append(caregiver_id)
    return told


def _to_told(
    alert: Any, document: Document, told: list[int], *, kind: str, key: str, now: datetime
) -> list[Message]:
    """The same message about an alert to each of ``told``."""
    return [
        Message(
            caregiver_id,
            alert.home_id,
            kind,
            f"alert:{alert.id}:{key}:{caregiver_id}",
            document,
            due_at=now,
            alert_id=alert.id,
        )
        for caregiver_id in told
    ]


def tell_acknowledged(connection: Connection, now: datetime) -> int:
    """'Ann is on it' to everyone else who was told about an urgent alert Ann acknowledged
    (by her link, the CLI or the dashboard); once per alert and caregiver (dedup key). An
    alert announced already is not composed again: one pass writes all of its messages."""
    announced = (
        select(NOTIFICATIONS.c.id)
        .where(NOTIFICATIONS.c.alert_id == ALERTS.c.id, NOTIFICATIONS.c.kind == "acknowledged")
        .exists()
    )
    rows = connection.execute(
        select(ALERTS).where(
            ALERTS.c.state == ACKED,
            ALERTS.c.urgent.is_(True),
            ALERTS.c.acked_at >= now - ANNOUNCE_ACK_WITHIN,
            ~announced,
        )
    ).all()
    told = _told(connection, [alert.id for alert in rows])
    others = {
        alert.id: [c for c in told.get(alert.id, ()) if c != alert.acked_by_caregiver_id]
        for alert in rows
    }
    rows = [alert for alert in rows if others[alert.id]]
    if not rows:
        return 0
    homes = load_homes(connection, {row.home_id for row in rows})
    messages = []
    for alert in rows:
        facts = AlertFacts.of(alert)
        document = compose.acknowledged(facts, home_facts(homes[alert.home_id]), now)
        messages += _to_told(
            alert, document, others[alert.id], kind="acknowledged", key="acked", now=now
        )
    return enqueue_many(connection, messages, now)


def tell_blind(connection: Connection, opened: list[Any], now: datetime) -> int:
    """When the relay stops seeing a home while an urgent alarm is open there, whoever was
    told about the alarm hears at once that we cannot see whether anyone is moving."""
    if not opened:
        return 0
    # A home that went blind both ways in one tick is told the bridge (the more specific).
    by_home = {s.home_id: s for s in sorted(opened, key=lambda spell: spell.cause == "bridge")}
    # IN_LIST homes a statement: a regional outage blinds more homes than one may name.
    alerts = [
        alert
        for chunk in itertools.batched(sorted(by_home), IN_LIST)
        for alert in connection.execute(
            select(ALERTS).where(
                ALERTS.c.home_id.in_(chunk),
                ALERTS.c.urgent.is_(True),
                ALERTS.c.state.in_(GOING_ON),
            )
        )
    ]
    if not alerts:
        return 0
    homes = load_homes(connection, {alert.home_id for alert in alerts})
    told = _told(connection, [alert.id for alert in alerts])
    messages = []
    for alert in alerts:
        spell = by_home[alert.home_id]
        facts = AlertFacts.of(alert)
        document = compose.blind_during_alarm(
            facts, home_facts(homes[alert.home_id]), Blindness(spell.cause, spell.started_at), now
        )
        messages += _to_told(
            alert, document, told.get(alert.id, []), kind="alert", key=f"blind:{spell.id}", now=now
        )
    return enqueue_many(connection, messages, now)


def _folded_message(
    caregiver_id: int,
    items: list[tuple[AlertEvent, AlertFacts, Watcher]],
    homes: dict[str, Any],
    now: datetime,
) -> Message:
    """One message with every non-urgent change of this tick for one caregiver."""
    first, _, watcher = items[0]
    document = compose.alerts([(facts, home_facts(homes[e.home_id])) for e, facts, _ in items], now)
    zone = ZoneInfo(homes[first.home_id].timezone)
    due = now
    if watcher.quiet is not None:
        start, end = parse_hhmm(watcher.quiet[0]), parse_hhmm(watcher.quiet[1])
        if in_window(now, zone, start, end):
            due = window_end(now, zone, end)  # not urgent: it waits for the morning
    ids = ",".join(str(e.alert_id) + ("o" if e.opened else "r") for e, _, _ in items)
    return Message(
        caregiver_id,
        first.home_id,
        "alerts",
        f"alerts:{caregiver_id}:{ids}",
        document,
        due_at=due,
        alert_id=first.alert_id if len(items) == 1 else None,
    )
