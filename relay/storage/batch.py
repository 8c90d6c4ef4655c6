"""A batch of reports stored in ONE transaction (relay/ingest.py's writer): the four statements,
compiled once per database driver, and what a batch's reports become in each table.

It imports nothing of the report's decoder (msgspec cannot be loaded into a second
interpreter): on SQLite it runs in the writer's interpreter of its own
(:mod:`relay.storage.sqlite_writer`), and the request hands it each report as an
:class:`Incoming`, plain values only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
import functools
import itertools
import json
from typing import Any, Literal, NamedTuple

from sqlalchemy import and_, bindparam, case, func, or_, select, tuple_, update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import JSON, TypeDecorator

from .bulk import DriverStatement, bulk_insert, values_cte
from .models import ACTIVITY, DEVICES, HOMES, IN_LIST, REPORTS

#: "conflict": the report_id is stored already with a different body.
type Outcome = Literal["stored", "duplicate", "conflict"]


class Incoming(NamedTuple):
    """One report as the writer stores it: plain values, built by the request from the
    decoded report (``relay.ingest.incoming``)."""

    home_id: str
    report_id: str
    #: The request body as received (stored verbatim).
    body: str
    sent_at: datetime
    #: Each device's fields in ``_DEVICE_FIELDS`` order, from ``device_id`` to ``last_seen``.
    devices: tuple[tuple[Any, ...], ...]
    #: (room or "", at) of each activity event.
    activity: tuple[tuple[str, datetime], ...]
    reachable: bool
    offline_since: datetime | None
    #: The home's counters and verdict as their JSON columns store them (encoded by the
    #: request, on the serving loop, not by the writer whose every batch the requests wait for).
    counters: str
    verdict: str | None


def _same_report(stored: str, body: str) -> bool:
    if stored == body:
        return True
    try:
        return bool(json.loads(stored) == json.loads(body))
    except ValueError:
        return False


def bucket_start(when: datetime) -> datetime:
    """The 15-minute bucket a moment falls in."""
    return when.replace(minute=when.minute - when.minute % 15, second=0, microsecond=0)


def _greatest(dialect: str, a: Any, b: Any) -> Any:
    return func.greatest(a, b) if dialect == "postgresql" else func.max(a, b)


def _least(dialect: str, a: Any, b: Any) -> Any:
    return func.least(a, b) if dialect == "postgresql" else func.min(a, b)


@dataclass(frozen=True, slots=True)
class _Statements:
    reports: DriverStatement
    devices: DriverStatement
    activity: DriverStatement
    homes: DriverStatement


_REPORT_FIELDS = ("home_id", "report_id", "sent_at", "received_at", "payload")
_DEVICE_FIELDS = (
    "home_id",
    "device_id",
    "name",
    "room",
    "kind",
    "battery",
    "battery_state",
    "connectivity",
    "last_seen",
    "offline_since",
    "updated_at",
)
_ACTIVITY_FIELDS = ("home_id", "room", "bucket_start", "count", "first_at", "last_at")
_HOME_FIELDS = (
    "b_home",
    "b_received",
    "b_sent",
    "b_reachable",
    "b_offline_since",
    "b_counters",
    "b_verdict",
    "b_activity",
)
_PREPARED: dict[tuple[str, str], _Statements] = {}


def _statements(dialect: Dialect) -> _Statements:
    """The four statements of a batch, built and compiled once per database driver. On
    PostgreSQL the inserts take their rows as arrays (one round trip each, whatever the
    batch's size); on SQLite as VALUES (no round trips to save)."""
    key = (dialect.name, dialect.driver)
    if (prepared := _PREPARED.get(key)) is None:
        name = dialect.name
        shape: Literal["rows", "columns"] = "columns" if name == "postgresql" else "rows"
        prepared = _PREPARED[key] = _Statements(
            DriverStatement(
                functools.partial(_report_insert, name), _REPORT_FIELDS, dialect, shape
            ),
            DriverStatement(
                functools.partial(_device_upsert, name), _DEVICE_FIELDS, dialect, shape
            ),
            DriverStatement(
                functools.partial(_activity_upsert, name), _ACTIVITY_FIELDS, dialect, shape
            ),
            DriverStatement(
                functools.partial(_home_update, name),
                _HOME_FIELDS,
                dialect,
                "many" if name == "postgresql" else "rows",
            ),
        )
    return prepared


def _home_and_id(incoming: Incoming) -> tuple[str, str]:
    return (incoming.home_id, incoming.report_id)


def store_batch(
    connection: Connection, batch: Sequence[Incoming], received_at: datetime
) -> list[Outcome]:
    """Store a batch inside the caller's transaction; outcomes in batch order.

    Every table's rows are written in key order (reports, devices, activity, homes; each
    sorted): two replicas' transactions writing at once then lock rows in the same order and
    cannot deadlock.
    """
    statements = _statements(connection.dialect)
    # Within the batch the first copy of a report counts (the sort is stable); against the
    # table, ON CONFLICT DO NOTHING ... RETURNING tells which rows were really new, in one
    # statement.
    first: dict[tuple[str, str], Incoming] = {}
    for incoming in sorted(batch, key=_home_and_id):
        first.setdefault((incoming.home_id, incoming.report_id), incoming)
    rows = [(*key, s.sent_at, received_at, s.body) for key, s in first.items()]
    stored = set(statements.reports.execute(connection, rows))
    fresh = [first[key] for key in first if key in stored]
    earlier = _stored_bodies(connection, [key for key in first if key not in stored])
    outcomes: list[Outcome] = []
    for s in batch:
        key = (s.home_id, s.report_id)
        if key in stored and first[key] is s:
            outcomes.append("stored")
            continue
        known = earlier.get(key, first[key].body)
        outcomes.append("duplicate" if _same_report(known, s.body) else "conflict")
    if not fresh:
        return outcomes
    _store_devices(connection, statements.devices, fresh)
    _store_activity(connection, statements.activity, fresh)
    _store_homes(connection, statements.homes, fresh, received_at)
    return outcomes


def _stored_bodies(
    connection: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """What was stored under each (home, report_id) before (for telling a retry from a
    conflict; only repeated reports pay for this read)."""
    found: dict[tuple[str, str], str] = {}
    for chunk in itertools.batched(keys, IN_LIST):
        rows = connection.execute(
            select(REPORTS.c.home_id, REPORTS.c.report_id, REPORTS.c.payload).where(
                tuple_(REPORTS.c.home_id, REPORTS.c.report_id).in_(chunk)
            )
        )
        found.update(((row.home_id, row.report_id), row.payload) for row in rows)
    return found


def _report_insert(dialect: str, rows: int) -> Any:
    reports = REPORTS
    return (
        bulk_insert(dialect, REPORTS, _REPORT_FIELDS, rows)
        .on_conflict_do_nothing(index_elements=[reports.c.report_id, reports.c.home_id])
        .returning(reports.c.home_id, reports.c.report_id)
    )


def _store_devices(
    connection: Connection, statement: DriverStatement, fresh: Sequence[Incoming]
) -> None:
    # Newest report wins per device, here and against what is stored (late arrivals lose).
    latest: dict[tuple[str, str], tuple[Any, ...]] = {}
    for incoming in fresh:
        home_id = incoming.home_id
        sent_at = incoming.sent_at
        for device in incoming.devices:
            key = (home_id, device[0])
            if (known := latest.get(key)) is not None and known[-1] > sent_at:
                continue
            connectivity = device[6]
            latest[key] = (  # in _DEVICE_FIELDS order
                home_id,
                *device,
                sent_at if connectivity not in (None, "connected") else None,
                sent_at,
            )
    statement.execute(connection, [latest[key] for key in sorted(latest)])


def _device_upsert(dialect: str, rows: int) -> Any:
    table = DEVICES
    insert = bulk_insert(dialect, DEVICES, _DEVICE_FIELDS, rows)
    new = insert.excluded
    still_offline = and_(new.connectivity.is_not(None), new.connectivity != "connected")
    return insert.on_conflict_do_update(
        index_elements=[table.c.home_id, table.c.device_id],
        set_={
            "name": new.name,
            "room": new.room,
            "kind": new.kind,
            "battery": new.battery,
            "battery_state": new.battery_state,
            "connectivity": new.connectivity,
            "last_seen": func.coalesce(new.last_seen, table.c.last_seen),
            # Offline since the FIRST report that saw it offline, until it is back.
            "offline_since": case(
                (still_offline, func.coalesce(table.c.offline_since, new.offline_since)),
                else_=None,
            ),
            "updated_at": new.updated_at,
        },
        where=table.c.updated_at <= new.updated_at,
    )


def _store_activity(
    connection: Connection, statement: DriverStatement, fresh: Sequence[Incoming]
) -> None:
    # (count, first, last) per home, room and bucket: one row each.
    buckets: dict[tuple[str, str, datetime], list[Any]] = {}
    for incoming in fresh:
        for room, at in incoming.activity:
            key = (incoming.home_id, room, bucket_start(at))
            if (seen := buckets.get(key)) is None:
                buckets[key] = [1, at, at]
            else:
                seen[0] += 1
                seen[1] = min(seen[1], at)
                seen[2] = max(seen[2], at)
    statement.execute(connection, [(*key, *buckets[key]) for key in sorted(buckets)])


def _activity_upsert(dialect: str, rows: int) -> Any:
    table = ACTIVITY
    insert = bulk_insert(dialect, ACTIVITY, _ACTIVITY_FIELDS, rows)
    new = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=[table.c.home_id, table.c.room, table.c.bucket_start],
        set_={
            "count": table.c.count + new.count,
            "first_at": _least(dialect, table.c.first_at, new.first_at),
            "last_at": _greatest(dialect, table.c.last_at, new.last_at),
        },
    )


def _store_homes(
    connection: Connection,
    statement: DriverStatement,
    fresh: Sequence[Incoming],
    received_at: datetime,
) -> None:
    newest: dict[str, Incoming] = {}
    latest_activity: dict[str, datetime] = {}
    for incoming in fresh:
        current = newest.get(incoming.home_id)
        if current is None or current.sent_at <= incoming.sent_at:
            newest[incoming.home_id] = incoming
        for _, at in incoming.activity:
            known = latest_activity.get(incoming.home_id)
            if known is None or at > known:
                latest_activity[incoming.home_id] = at
    rows = []
    for home_id, incoming in sorted(newest.items()):
        rows.append(
            (  # in _HOME_FIELDS order
                home_id,
                received_at,
                incoming.sent_at,
                incoming.reachable,
                None if incoming.reachable else (incoming.offline_since or incoming.sent_at),
                incoming.counters,
                incoming.verdict,
                latest_activity.get(home_id),
            )
        )
    statement.execute(connection, rows)


class _EncodedJSON(TypeDecorator[str]):
    """A JSON column's value given as its JSON text (the request encodes it): bound
    as it is, where SQLAlchemy's JSON type would encode a dict with ``json.dumps`` (in the
    writer, a fifth of its Python)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


#: The homes' UPDATE's parameters, typed as their columns (so that each is bound as its column's
#: type says; untyped, SQLite's driver wrote a datetime in a format of its own).
_HOME_TYPES = {
    "b_home": HOMES.c.id.type,
    "b_received": HOMES.c.last_report_at.type,
    "b_sent": HOMES.c.last_report_sent_at.type,
    "b_reachable": HOMES.c.bridge_reachable.type,
    "b_offline_since": HOMES.c.bridge_offline_since.type,
    "b_counters": _EncodedJSON(),
    "b_verdict": _EncodedJSON(),
    "b_activity": HOMES.c.last_activity_at.type,
}


def _home_update(dialect: str, rows: int) -> Any:
    """The homes' UPDATE: for one row's parameters (PostgreSQL, as an executemany: its rows
    are locked in the order given), or for ``rows`` rows joined from a VALUES list (SQLite: one
    statement, where an executemany is a step per home that lets go of the GIL and waits to
    take it back)."""
    homes = HOMES
    if dialect == "postgresql":
        given = {field: bindparam(field, type_=kind) for field, kind in _HOME_TYPES.items()}
        statement = update(homes)
    else:
        batch = values_cte("b", _HOME_TYPES, rows)
        given = {field: batch.c[field] for field in _HOME_TYPES}
        statement = update(homes).add_cte(batch)
    activity = given["b_activity"]
    received = given["b_received"]
    # The bridge fields follow the newest report only; a late, older report just counts as
    # "heard from the home".
    newer = or_(
        homes.c.last_report_sent_at.is_(None),
        homes.c.last_report_sent_at <= given["b_sent"],
    )
    return statement.where(homes.c.id == given["b_home"]).values(
        # Replicas' batches commit in any order: the latest moment wins.
        last_report_at=_greatest(
            dialect, func.coalesce(homes.c.last_report_at, received), received
        ),
        # Activity may come in any report, late ones too: the newest moment wins.
        last_activity_at=case(
            (activity.is_(None), homes.c.last_activity_at),
            else_=_greatest(dialect, func.coalesce(homes.c.last_activity_at, activity), activity),
        ),
        last_report_sent_at=case((newer, given["b_sent"]), else_=homes.c.last_report_sent_at),
        bridge_reachable=case((newer, given["b_reachable"]), else_=homes.c.bridge_reachable),
        bridge_offline_since=case(
            (newer, given["b_offline_since"]), else_=homes.c.bridge_offline_since
        ),
        counters=case((newer, given["b_counters"]), else_=homes.c.counters),
        verdict=case((newer, given["b_verdict"]), else_=homes.c.verdict),
        # The relay watches a home from its first report on.
        watching_since=func.coalesce(homes.c.watching_since, given["b_sent"]),
    )
