"""What the relay can see of each home: since when it watches, the spells it could not see
(bridge unreachable, no reports), and the rooms of movements that messages name.

``track`` runs in every planning tick. A "reports" spell opens when the home's newest report is
older than ``FRESH_REPORT`` and closes when reports arrive again; since a home sends what it
queued during an internet outage, the spell is then replaced by the real gaps between the
reports' own times (a home whose queue filled the gap was seen all along). Summaries never
count a blind spell as quiet, and urgent messages say when the relay cannot see.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
import itertools
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    insert,
    literal_column,
    or_,
    select,
    union_all,
    update,
)

from ..messages.facts import Blindness, Movement
from ..storage.models import ACTIVITY, BLIND_SPELLS, HOMES, IN_LIST, REPORTS
from .alerting import FRESH_REPORT

#: Activity buckets are 15 minutes long (relay/ingest.py).
BUCKET = timedelta(minutes=15)


def blindness(
    home: Any, now: datetime, listening_since: datetime | None = None
) -> Blindness | None:
    """Why the relay cannot see this home (a ``homes`` row) right now, or None."""
    if home.bridge_reachable is False and home.bridge_offline_since is not None:
        return Blindness("bridge", home.bridge_offline_since)
    sent = home.last_report_sent_at
    if sent is not None and now - max(sent, listening_since or sent) > FRESH_REPORT:
        return Blindness("reports", sent)
    return None


def track(connection: Connection, now: datetime, listening_since: datetime | None) -> list[Any]:
    """Open and close blind spells; returns the spells opened now (rows with ``id``,
    ``home_id``, ``cause``, ``started_at``). It writes no ``homes`` row: a pass holds its rows'
    locks for seconds, and ingest's batches would wait on them (when watching began is written
    by ingest, with the home's first report)."""
    spells: defaultdict[str, dict[str, Any]] = defaultdict(dict)
    for spell in connection.execute(select(BLIND_SPELLS).where(BLIND_SPELLS.c.ended_at.is_(None))):
        spells[spell.home_id][spell.cause] = spell
    # Only homes that may be blind now, or were: for every other home there is nothing to do
    # (reading all 100,000 homes took 0.4 s of each pass).
    may_change = [
        and_(HOMES.c.bridge_reachable.is_(False), HOMES.c.bridge_offline_since.isnot(None)),
        HOMES.c.id.in_(select(BLIND_SPELLS.c.home_id).where(BLIND_SPELLS.c.ended_at.is_(None))),
    ]
    stale_before = now - FRESH_REPORT
    if listening_since is None or listening_since < stale_before:
        may_change.append(HOMES.c.last_report_sent_at < stale_before)
    to_open: list[dict[str, Any]] = []
    to_close: list[Any] = []
    ends: list[dict[str, Any]] = []
    for home in connection.execute(
        select(
            HOMES.c.id,
            HOMES.c.bridge_reachable,
            HOMES.c.bridge_offline_since,
            HOMES.c.last_report_sent_at,
        ).where(HOMES.c.last_report_sent_at.isnot(None), or_(*may_change))
    ):
        blind = blindness(home, now, listening_since)
        stale = blind is not None and blind.cause == "reports"
        bridge = home.bridge_reachable is False and home.bridge_offline_since is not None
        current = spells.get(home.id, {})
        if bridge and "bridge" not in current:
            to_open.append(_spell(home.id, "bridge", home.bridge_offline_since))
        elif not bridge and "bridge" in current:
            spell = current["bridge"]
            ends.append(
                {
                    "spell": spell.id,
                    "end": max(min(now, home.last_report_sent_at), spell.started_at),
                }
            )
        if stale and "reports" not in current:
            to_open.append(_spell(home.id, "reports", home.last_report_sent_at))
        elif not stale and "reports" in current:
            to_close.append(current["reports"])
    if ends:  # one executemany (the end of a Hue cloud outage ends every home's at once)
        connection.execute(
            update(BLIND_SPELLS)
            .where(BLIND_SPELLS.c.id == bindparam("spell"))
            .values(ended_at=bindparam("end")),
            ends,
        )
    _close_reports(connection, to_close)
    if not to_open:
        return []
    # One statement however many open (a regional outage blinds every home at once).
    return list(
        connection.execute(
            insert(BLIND_SPELLS).returning(
                BLIND_SPELLS.c.id,
                BLIND_SPELLS.c.home_id,
                BLIND_SPELLS.c.cause,
                BLIND_SPELLS.c.started_at,
            ),
            to_open,
        )
    )


def _spell(home_id: str, cause: str, start: datetime) -> dict[str, Any]:
    return {"home_id": home_id, "cause": cause, "started_at": start}


def _close_reports(connection: Connection, spells: Sequence[Any]) -> None:
    """Replace closed "no reports" spells by the real gaps between the reports sent since
    (per spell one range of the ``(home_id, sent_at)`` index, whatever the other homes sent);
    a few statements for ``IN_LIST`` spells, not a few each (the end of a regional outage
    closes every home's at once)."""
    gaps: list[dict[str, Any]] = []
    for chunk in itertools.batched(spells, IN_LIST):
        starts = {spell.home_id: spell.started_at for spell in chunk}
        times = connection.execute(
            select(REPORTS.c.home_id, REPORTS.c.sent_at)
            .join(
                BLIND_SPELLS,
                and_(
                    BLIND_SPELLS.c.home_id == REPORTS.c.home_id,
                    REPORTS.c.sent_at > BLIND_SPELLS.c.started_at,
                ),
            )
            .where(BLIND_SPELLS.c.id.in_([spell.id for spell in chunk]))
            .order_by(REPORTS.c.home_id, REPORTS.c.sent_at)
        ).tuples()
        for home_id, sent_times in itertools.groupby(times, key=lambda row: row[0]):
            previous = starts[home_id]
            for _, sent in sent_times:
                if sent - previous > FRESH_REPORT:
                    gaps.append(
                        {
                            "home_id": home_id,
                            "cause": "reports",
                            "started_at": previous,
                            "ended_at": sent,
                        }
                    )
                previous = max(previous, sent)
        connection.execute(
            delete(BLIND_SPELLS).where(BLIND_SPELLS.c.id.in_([spell.id for spell in chunk]))
        )
    if gaps:
        connection.execute(insert(BLIND_SPELLS), gaps)


#: Homes whose movement one statement looks up (a UNION ALL of one-row lookups).
MOVEMENTS_PER_STATEMENT = 100


def last_movements[K](
    connection: Connection, wanted: Mapping[K, tuple[str, datetime | None]]
) -> dict[K, Movement]:
    """For each key of ``wanted`` (a home and its ``last_activity_at``), that movement and its
    room (None when the activity row is gone); keys without a moment are left out."""
    known = {key: (home, at) for key, (home, at) in wanted.items() if at is not None}
    rooms = _first_rows(connection, known, _room_at)
    return {
        key: Movement(at, rooms[key].room or None if key in rooms else None)
        for key, (_, at) in known.items()
    }


def movements_after[K](
    connection: Connection, wanted: Mapping[K, tuple[str, datetime]]
) -> dict[K, Movement]:
    """For each key of ``wanted`` (a home and a moment), the home's first movement after that
    moment and its room (what ended a silence); keys without one are left out."""
    rows = _first_rows(connection, wanted, _first_after)
    return {
        key: Movement(
            row.first_at if row.first_at > wanted[key][1] else row.last_at, row.room or None
        )
        for key, row in rows.items()
    }


def _first_rows[K](
    connection: Connection,
    wanted: Mapping[K, tuple[str, datetime]],
    lookup: Callable[[int, str, datetime], Select[Any]],
) -> dict[K, Any]:
    """The one activity row ``lookup`` finds for each key's home and moment: a statement per
    ``MOVEMENTS_PER_STATEMENT`` homes, not one per home (the silences of hundreds of homes can
    begin or end in one tick)."""
    keys = list(wanted)
    found: dict[K, Any] = {}
    for chunk in itertools.batched(range(len(keys)), MOVEMENTS_PER_STATEMENT):
        lookups = [lookup(index, *wanted[keys[index]]) for index in chunk]
        for row in connection.execute(union_all(*lookups) if len(lookups) > 1 else lookups[0]):
            found[keys[row.n]] = row
    return found


def _first_after(index: int, home_id: str, after: datetime) -> Select[Any]:
    """A home's first activity row after a moment, as ``n`` (its index), room and times."""
    return _one_row(
        index,
        ACTIVITY.c.home_id == home_id,
        ACTIVITY.c.bucket_start > after - BUCKET,
        ACTIVITY.c.last_at > after,
    )


def _room_at(index: int, home_id: str, at: datetime) -> Select[Any]:
    """The activity row of a home's movement at ``at`` (its ``last_activity_at``)."""
    return _one_row(
        index,
        ACTIVITY.c.home_id == home_id,
        ACTIVITY.c.bucket_start > at - BUCKET,
        ACTIVITY.c.bucket_start <= at,
        ACTIVITY.c.last_at == at,
    )


def _one_row(index: int, *where: ColumnElement[bool]) -> Select[Any]:
    first = (
        select(
            literal_column(str(index), Integer).label("n"),
            ACTIVITY.c.room,
            ACTIVITY.c.first_at,
            ACTIVITY.c.last_at,
        )
        .where(*where)
        .order_by(ACTIVITY.c.bucket_start, ACTIVITY.c.first_at)
        .limit(1)
        .subquery()
    )
    return select(first)  # a subquery: SQLite's UNION ALL takes no ORDER BY or LIMIT of its own
