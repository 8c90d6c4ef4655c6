"""Storing reports: one writer task, concurrent reports committed together (group commit).

A request hands its validated report to :class:`IngestWriter` and waits. The writer takes
everything queued, stores it in ONE transaction, commits, and only then answers each request:
202 is never sent for a report that is not durable, and one fsync serves a whole batch.
A repeated ``report_id`` (per home) is answered as a duplicate and stored once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import functools
import itertools
import json
import logging
import os
from pathlib import Path
import random
import shutil
import sqlite3
import stat
import threading
import time
from typing import Any, Literal

import msgspec
from sqlalchemy import and_, bindparam, case, event, func, or_, select, text, tuple_, update
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import JSON, TypeDecorator

from .clock import utcnow
from .metrics import Metrics
from .schema import Report, Verdict
from .storage.bulk import DriverStatement, bulk_insert, values_cte
from .storage.db import FileGuard, checkpoint_sqlite, create_sync_sqlite_engine, guard_file
from .storage.models import ACTIVITY, DEVICES, HOMES, IN_LIST, REPORTS

_LOGGER = logging.getLogger(__name__)

BUCKET = timedelta(minutes=15)
CHECKPOINT_EVERY = 1.0


def _writer_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """The writer never checkpoints (a checkpoint's fsync would stall a batch; a separate
    connection does it in the background), and keeps its temporary data (a batch's RETURNING
    rows, statement journals: at most one batch) in memory: in files, SQLite created, wrote
    and deleted one in /var/tmp for every other batch."""
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
    dbapi_connection.execute("PRAGMA temp_store=MEMORY")


MAX_BATCH = 512

#: "conflict": the report_id is stored already with a different body.
type Outcome = Literal["stored", "duplicate", "conflict"]
#: /healthz says 503 when the SQLite database's disk has less room than this.
MIN_FREE_BYTES = 4 * 1024 * 1024
#: Over this much WAL the writer checkpoints it itself (TRUNCATE), between two batches.
WAL_CHECKPOINT_BYTES = 16 * 1024 * 1024


class StorageError(RuntimeError):
    """The report could not be stored (the client should retry; nothing was acknowledged)."""


class UnstorableError(StorageError):
    """The database refuses this report's data itself: retrying cannot help (422)."""


def _sqlstate(err: BaseException) -> str | None:
    """PostgreSQL's SQLSTATE of a failed statement (None on SQLite)."""
    if isinstance(err, DBAPIError):
        code = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "pgcode", None)
        return str(code) if code else None
    return None


def _data_error(err: BaseException) -> bool:
    """The database refused a report's DATA (a value it cannot hold), not its own state:
    retrying cannot help, and the other reports of the batch are not at fault. Anything else
    (disk full, read-only, permissions, a lost server) is the database's, answered 503."""
    if isinstance(err, DBAPIError):
        if code := _sqlstate(err):  # PostgreSQL: class 22 data exception, 23 integrity violation
            return code[:2] in ("22", "23")
        return isinstance(err, DataError | IntegrityError)
    if isinstance(err, StatementError):  # while binding parameters
        return isinstance(err.orig, UnicodeError | ValueError | TypeError)
    # sqlite3's own, unwrapped (the writer's batch statements run on its connection directly).
    return isinstance(
        err, UnicodeError | ValueError | TypeError | sqlite3.DataError | sqlite3.IntegrityError
    )


#: PostgreSQL rolled the transaction back to let another one through: a deadlock (40P01) or a
#: serialization failure (40001). Nothing is wrong with the batch or the database.
_CONFLICTS = frozenset({"40001", "40P01"})
#: A batch that lost such a conflict is written again up to this many times before its
#: requests get 503.
CONFLICT_RETRIES = 3
#: Before the n-th retry, a random pause of up to n times this (seconds).
CONFLICT_PAUSE = 0.02
#: A batch still being written after this long (seconds) makes /healthz fail: the database
#: holds it (a lock nobody releases, a connection gone silent) and reports wait.
STUCK_AFTER = 30.0
#: PostgreSQL: a statement of a batch still unanswered after this long (seconds) fails the
#: batch (503; the client sends its reports again) and the writer's connection is replaced,
#: instead of the requests waiting as long as the database holds them. (SQLite's writer waits
#: at most its busy timeout, 30 s, for a lock.)
STATEMENT_TIMEOUT = 10.0


def _conflict(err: BaseException) -> bool:
    return _sqlstate(err) in _CONFLICTS


#: The write /healthz commits: alembic's one-row table, set to itself (no schema of its own).
_PROBE = text("UPDATE alembic_version SET version_num = version_num")


def describe(err: BaseException) -> str:
    """Why the database failed, for /healthz and logs: SQLite's messages are fixed texts (no
    data in them); other drivers' may name hosts or values, so only their error type is said."""
    cause: BaseException = err.orig if isinstance(err, DBAPIError) and err.orig else err
    if isinstance(cause, sqlite3.Error):
        return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    # SQLAlchemy's asyncpg adapter wraps asyncpg's exception, whose class says what happened
    # (ReadOnlySQLTransactionError, DiskFullError, CannotConnectNowError…).
    name = type(cause.__cause__ or cause).__name__
    code = getattr(cause, "sqlstate", None)
    return f"{name} (SQLSTATE {code})" if code else name


def _same_report(stored: str, body: str) -> bool:
    if stored == body:
        return True
    try:
        return bool(json.loads(stored) == json.loads(body))
    except ValueError:
        return False


@dataclass(slots=True)
class Submission:
    """One report waiting for the writer."""

    home_id: str
    #: The request body as received (stored verbatim).
    body: str
    report: Report
    done: asyncio.Future[Outcome]
    #: The report's id as stored (canonical UUID text).
    report_id: str = field(init=False)
    #: The home's counters and verdict as their JSON columns store them. Encoded here, by the
    #: request (on the serving loop, which has time to spare while the writer writes the
    #: previous batch), not by the writer, whose every batch the requests wait for.
    counters: str = field(init=False)
    verdict: str | None = field(init=False)

    def __post_init__(self) -> None:
        report = self.report
        self.report_id = str(report.report_id)
        self.counters = _encode(report.counters).decode()
        verdict = report.verdict
        self.verdict = _encode(verdict.as_json()).decode() if isinstance(verdict, Verdict) else None


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


def _home_and_id(submission: Submission) -> tuple[str, str]:
    return (submission.home_id, submission.report_id)


def store_batch(
    connection: Connection, batch: Sequence[Submission], received_at: datetime
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
    first: dict[tuple[str, str], Submission] = {}
    for submission in sorted(batch, key=_home_and_id):
        first.setdefault((submission.home_id, submission.report_id), submission)
    rows = [(*key, s.report.sent_at, received_at, s.body) for key, s in first.items()]
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
    connection: Connection, statement: DriverStatement, fresh: Sequence[Submission]
) -> None:
    # Newest report wins per device, here and against what is stored (late arrivals lose).
    latest: dict[tuple[str, str], tuple[Any, ...]] = {}
    for submission in fresh:
        home_id = submission.home_id
        sent_at = submission.report.sent_at
        for device in submission.report.devices:
            key = (home_id, device.id)
            if (known := latest.get(key)) is not None and known[-1] > sent_at:
                continue
            connectivity = device.connectivity
            latest[key] = (  # in _DEVICE_FIELDS order
                home_id,
                device.id,
                device.name,
                device.room,
                device.kind,
                device.battery,
                device.battery_state,
                connectivity,
                device.last_seen,
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
    connection: Connection, statement: DriverStatement, fresh: Sequence[Submission]
) -> None:
    # (count, first, last) per home, room and bucket: one row each.
    buckets: dict[tuple[str, str, datetime], list[Any]] = {}
    for submission in fresh:
        for activity in submission.report.activity:
            at = activity.at
            key = (submission.home_id, activity.room or "", bucket_start(at))
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
    fresh: Sequence[Submission],
    received_at: datetime,
) -> None:
    newest: dict[str, Submission] = {}
    latest_activity: dict[str, datetime] = {}
    for submission in fresh:
        current = newest.get(submission.home_id)
        if current is None or current.report.sent_at <= submission.report.sent_at:
            newest[submission.home_id] = submission
        for moment in submission.report.activity:
            known = latest_activity.get(submission.home_id)
            if known is None or moment.at > known:
                latest_activity[submission.home_id] = moment.at
    rows = []
    for home_id, submission in sorted(newest.items()):
        report = submission.report
        bridge = report.bridge
        rows.append(
            (  # in _HOME_FIELDS order
                home_id,
                received_at,
                report.sent_at,
                bridge.reachable,
                None if bridge.reachable else (bridge.offline_since or report.sent_at),
                submission.counters,
                submission.verdict,
                latest_activity.get(home_id),
            )
        )
    statement.execute(connection, rows)


_encode = msgspec.json.Encoder().encode


class _EncodedJSON(TypeDecorator[str]):
    """A JSON column's value given as its JSON text (:class:`Submission` encodes it): bound
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


def _align_sidecars(database: Path) -> None:
    """SQLite creates ``-wal`` and ``-shm`` with the database file's mode of that moment: made
    while the database was read-only, they stay read-only after it is writable again (and so
    does every connection). Give them the database's mode back once it is writable."""
    try:
        database = database.resolve()  # the side files are beside a symbolic link's target
        if not os.access(database, os.W_OK):
            return
        mode = stat.S_IMODE(database.stat().st_mode)
        for suffix in ("-wal", "-shm"):
            sidecar = database.with_name(database.name + suffix)
            if sidecar.exists() and not os.access(sidecar, os.W_OK):
                sidecar.chmod(mode)
                _LOGGER.warning("%s was read-only; given the database's mode again", sidecar.name)
    except OSError as err:
        _LOGGER.error("cannot repair the database's side files: %s", err.strerror)


@dataclass(slots=True)
class _Written:
    """What writing a batch came to: each report's outcome or error (in batch order), and
    the transactions committed and failed on the way."""

    results: list[Outcome | StorageError] = field(default_factory=list)
    committed: int = 0
    failed: int = 0


class IngestWriter:
    """The single writer behind every ingest request, in a thread of its own.

    Requests append their report to ``_pending`` on the serving event loop. The writer thread
    takes everything pending (at most ``max_batch``), stores it in ONE transaction, commits,
    hands the outcomes back to the serving loop in one call, and takes the next batch at once:
    it never waits for the busy serving loop. (As a task on that loop it waited for the loop's
    turn between batches, and on PostgreSQL at each of a batch's round trips: under wrk, 1.4 ms
    between SQLite batches of 9 ms, and 4.6 ms of a 10 ms PostgreSQL batch outside its four
    statements; issue 16.) On SQLite the batch runs on a plain ``sqlite3`` connection (one
    hand-over per batch instead of aiosqlite's one per statement); on PostgreSQL on an asyncpg
    connection of the writer's own, held open (no pool checkout and pre-ping per batch), in the
    thread's own event loop.
    """

    def __init__(self, engine: AsyncEngine, metrics: Metrics, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._metrics = metrics
        self._max_batch = max_batch
        #: Reports waiting for the writer (appended by the serving loop, taken by the writer).
        self._pending: deque[Submission] = deque()
        self._serving: asyncio.AbstractEventLoop | None = None
        #: The writer thread's own event loop, and what wakes it when reports arrive.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._idle = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._finished: asyncio.Future[None] | None = None
        #: PostgreSQL: the writer's own engine and connection (used in its thread only).
        self._own_engine: AsyncEngine | None = None
        self._connection: AsyncConnection | None = None
        self._sync_engine: Engine | None = None
        #: SQLite: the database file the writer works on (see FileGuard).
        self._guard: FileGuard | None = None
        #: SQLite: the writer's connection, held from batch to batch (a pool checkout and
        #: return per batch were a sixth of the writer's time), and the number of recoveries
        #: it was opened after (a later :meth:`recover` makes the writer open a fresh one).
        self._held: Connection | None = None
        self._held_after = 0
        self._recoveries = 0
        self._checkpointer: asyncio.Task[None] | None = None
        #: When and why the last batch failed, if the database failed it and none succeeded
        #: since (a batch that only lost a conflict to another transaction does not count).
        self.last_failure: tuple[float, str] | None = None
        #: Since when (monotonic) the writer has been writing its current batch, if it is.
        self._writing_since: float | None = None
        if engine.dialect.name == "sqlite":
            self._sync_engine = create_sync_sqlite_engine(engine.url)
            event.listen(self._sync_engine, "connect", _writer_pragmas)
            self._checkpoint_engine = create_sync_sqlite_engine(engine.url)
            self._guard = guard_file(self._sync_engine)

    @property
    def pending(self) -> int:
        """Reports waiting for the writer."""
        return len(self._pending)

    def start(self) -> None:
        """Start writing."""
        self._serving = asyncio.get_running_loop()
        self._finished = self._serving.create_future()
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(started,), name="hpoll-ingest", daemon=True
        )
        self._thread.start()
        started.wait()  # its loop exists: submissions can wake it
        if self._sync_engine is not None:
            self._checkpointer = asyncio.create_task(self._checkpoint_forever())

    async def _checkpoint_forever(self) -> None:
        written = -1
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY)
            if self._metrics.batches != written:
                written = self._metrics.batches
                try:
                    await asyncio.to_thread(checkpoint_sqlite, self._checkpoint_engine)
                except Exception as err:
                    _LOGGER.warning("WAL checkpoint failed: %s", type(err).__name__)

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        if self._thread is not None:
            assert self._finished is not None
            self._stopping = True
            self._wake_writer()
            await self._finished
            self._thread.join()
            self._thread = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()
            self._checkpoint_engine.dispose()
            self._sync_engine = None

    # -- the writer thread ---------------------------------------------------------------------

    def _thread_main(self, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._work(started))
        except BaseException:
            _LOGGER.exception("the ingest writer stopped")
        finally:
            loop.close()
            self._stopping = True
            serving, finished = self._serving, self._finished
            assert serving is not None
            assert finished is not None
            # Whatever is still pending (only if the writer died) is not left waiting.
            stranded = list(self._pending)
            self._pending.clear()
            failure = StorageError("the ingest writer stopped")
            with contextlib.suppress(RuntimeError):  # the serving loop is closed already
                serving.call_soon_threadsafe(
                    self._deliver, stranded, _Written([failure] * len(stranded))
                )
                serving.call_soon_threadsafe(finished.set_result, None)

    async def _work(self, started: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._sync_engine is None:
            url = self._engine.url
            # asyncpg's own bound on every statement (another driver would refuse the option).
            bound = (
                {"command_timeout": STATEMENT_TIMEOUT} if url.get_driver_name() == "asyncpg" else {}
            )
            self._own_engine = create_async_engine(url, poolclass=NullPool, connect_args=bound)
        started.set()
        serving = self._serving
        assert serving is not None
        try:
            while True:
                if not self._pending:
                    if self._stopping:
                        return
                    self._idle = True
                    self._wake.clear()
                    if not self._pending and not self._stopping:  # else it came meanwhile
                        await self._wake.wait()
                    self._idle = False
                    continue
                batch = [
                    self._pending.popleft() for _ in range(min(len(self._pending), self._max_batch))
                ]
                written = _Written()
                self._writing_since = time.monotonic()
                try:
                    await self._write(batch, written)
                except Exception:  # a bug, not the database: the writer carries on
                    _LOGGER.exception("writing %d reports failed", len(batch))
                    written = _Written([StorageError("the report was not stored")] * len(batch))
                except BaseException:  # the writer stops for good: its batch is answered too
                    self._stopping = True
                    failure = StorageError("the ingest writer stopped")
                    serving.call_soon_threadsafe(
                        self._deliver, batch, _Written([failure] * len(batch))
                    )
                    raise
                finally:
                    self._writing_since = None
                serving.call_soon_threadsafe(self._deliver, batch, written)
                # Let a probe waiting for its turn (see probe) run between two batches.
                await asyncio.sleep(0)
        finally:
            await self._drop_connection()
            if self._own_engine is not None:
                await self._own_engine.dispose()

    def _wake_writer(self) -> None:
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # its loop is closed: it has stopped
                self._loop.call_soon_threadsafe(self._wake.set)

    async def _write(self, batch: list[Submission], written: _Written) -> None:
        """Store ``batch`` (on the writer's loop), noting each report's outcome in ``written``."""
        conflicts = 0
        while True:
            # PostgreSQL: the writer's connection, held since an earlier batch, may have been
            # closed meanwhile (a server restart, an administrator): such a batch is written
            # again at once on a fresh connection (the pool's pre-ping did this before).
            held = self._connection is not None
            try:
                outcomes = await self._store(batch)
            except Exception as err:
                if held and isinstance(err, DBAPIError) and err.connection_invalidated:
                    _LOGGER.warning("the writer's database connection was lost; reconnecting")
                    await self._drop_connection()
                    continue
                written.failed += 1
                if _conflict(err) and conflicts < CONFLICT_RETRIES:
                    conflicts += 1
                    # Another transaction (the other replica's batch, a planning pass) won a
                    # deadlock or a serialization conflict; this one was rolled back. Again,
                    # after a random pause so that the two do not meet again at once.
                    _LOGGER.warning(
                        "storing %d reports lost a conflict (%s); writing them again",
                        len(batch),
                        describe(err),
                    )
                    await asyncio.sleep(random.uniform(0, CONFLICT_PAUSE * conflicts))  # noqa: S311
                    continue
                _LOGGER.error("storing %d reports failed: %s", len(batch), describe(err))
                if _data_error(err):
                    if len(batch) > 1:
                        # One report's data broke the batch: halve until it stands alone, so
                        # no other report pays for it (log2(batch) more transactions, only on
                        # this rare path).
                        middle = len(batch) // 2
                        await self._write(batch[:middle], written)
                        await self._write(batch[middle:], written)
                        return
                    written.results.append(
                        UnstorableError("the database cannot store this report's data")
                    )
                    return
                if not _conflict(err):
                    # A conflict lost again and again says the database is busy, not that it
                    # cannot write: /healthz keeps the replica in the load balancer.
                    self.last_failure = (time.monotonic(), describe(err))
                await self._after_failure()
                written.results += [StorageError("the database is unavailable")] * len(batch)
                return
            written.committed += 1
            self.last_failure = None
            written.results += outcomes
            return

    async def _store(self, batch: list[Submission]) -> list[Outcome]:
        if self._sync_engine is not None:
            return self._store_in_thread(batch, utcnow())
        if self._connection is None:
            assert self._own_engine is not None
            self._connection = await self._own_engine.connect()
        async with self._connection.begin():
            return await self._connection.run_sync(store_batch, batch, utcnow())

    async def _after_failure(self) -> None:
        """After a failure of the database itself: fresh connections for the next batch."""
        await self._drop_connection()
        if self._sync_engine is not None and self._serving is not None:
            # Every connection of the process to the file (see recover), the serving loop's
            # too: the next batch waits until they are closed.
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self.recover(), self._serving)
            )

    async def _drop_connection(self) -> None:
        self._drop_held()
        if (connection := self._connection) is not None:
            self._connection = None
            with contextlib.suppress(Exception):  # it is broken: nothing to save
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()

    def _store_in_thread(self, batch: list[Submission], received_at: datetime) -> list[Outcome]:
        connection = self._sqlite_connection()
        with connection.begin():
            outcomes = store_batch(connection, batch, received_at)
        if self._guard is not None:
            # Committed into the file the relay opened; if another was put in its place
            # meanwhile, nobody will read these: 503, not 202 (the homes send them again).
            self._guard.check()
        self._bound_wal(connection)
        return outcomes

    def _sqlite_connection(self) -> Connection:
        """The writer's held SQLite connection; a fresh one after :meth:`recover` (whichever
        loop called it: the writer's own failures drop theirs at once)."""
        assert self._sync_engine is not None
        if self._held is not None and self._held_after != self._recoveries:
            self._drop_held()
        if self._guard is not None:
            # Held, it is not checked out per batch (where the pool checks the file): a file
            # put in its place or moved away fails the batch (503) before it is written.
            try:
                self._guard.check()
            except sqlite3.OperationalError:
                self._drop_held()
                raise
        if self._held is None:
            self._held_after = self._recoveries
            self._held = self._sync_engine.connect()
        return self._held

    def _drop_held(self) -> None:
        """Close the held SQLite connection for good (not back into the pool: a connection
        of the failure's time must not be handed out again)."""
        if (connection := self._held) is not None:
            self._held = None
            with contextlib.suppress(Exception):  # it may be broken: nothing to save
                connection.invalidate()
            with contextlib.suppress(Exception):
                connection.close()

    def _bound_wal(self, connection: Connection) -> None:
        """Checkpoint the WAL from the writer itself once it is large: the background PASSIVE
        checkpoint cannot restart a WAL that a busy writer keeps appending to."""
        assert self._sync_engine is not None
        # Beside the file itself: SQLite follows a symbolic link to it.
        wal = f"{os.path.realpath(str(self._sync_engine.url.database))}-wal"
        try:
            if os.path.getsize(wal) < WAL_CHECKPOINT_BYTES:
                return
        except OSError:
            return
        # Readers hold it back only briefly; a writer waiting 30 s for them would not.
        with connection.begin():  # SQLAlchemy's; the pragmas change no data
            connection.exec_driver_sql("PRAGMA busy_timeout=200")
            try:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                connection.exec_driver_sql("PRAGMA busy_timeout=30000")

    # -- the serving loop ----------------------------------------------------------------------

    def _deliver(self, batch: list[Submission], written: _Written) -> None:
        """Answer a written batch's requests (on the serving loop)."""
        self._metrics.batches += written.committed
        self._metrics.db_errors += written.failed
        for submission, result in zip(batch, written.results, strict=True):
            if submission.done.done():
                continue
            if isinstance(result, StorageError):
                submission.done.set_exception(result)
            else:
                submission.done.set_result(result)

    async def submit(self, home_id: str, body: str, report: Report) -> Outcome:
        """Queue a validated report; return once it is committed (or raise StorageError)."""
        if self._stopping or self._loop is None:
            raise StorageError("the relay is stopping")
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append(Submission(home_id, body, report, done))
        if self._idle:
            self._idle = False
            self._wake_writer()
        return await done

    async def probe(self) -> str | None:
        """Commit a write that changes nothing, the way reports are written: None when it
        commits, else why not (a fixed description, no SQL or parameters)."""
        if self._stopping or self._thread is None or not self._thread.is_alive():
            return "the ingest writer is not running"
        if (since := self._writing_since) is not None and time.monotonic() - since > STUCK_AFTER:
            return (
                f"a batch of reports has waited {time.monotonic() - since:.0f} s for the database"
            )
        if self._sync_engine is not None:
            try:
                free = shutil.disk_usage(Path(str(self._sync_engine.url.database)).parent).free
            except OSError as err:
                return f"cannot read the disk's free space: {err.strerror}"
            if free < MIN_FREE_BYTES:
                return f"disk full ({free // 1024} KiB free, reports need {MIN_FREE_BYTES // 1024})"
        if self.last_failure is not None and time.monotonic() - self.last_failure[0] < 30:
            # The last batch failed for the database's sake and none has succeeded since: the
            # probe's one-row write may fit where reports do not.
            return self.last_failure[1]
        for attempt in (1, 2):
            try:
                if self._sync_engine is not None:
                    await self._between_batches(self._probe_sync)
                else:
                    async with self._engine.begin() as connection:
                        await connection.execute(_PROBE)
            except Exception as err:
                await self.recover()
                if attempt == 2:
                    return describe(err)
            else:
                return None
        raise AssertionError("unreachable")

    async def _between_batches(self, call: Callable[[], None]) -> None:
        """Run ``call`` in the writer's thread, between two batches (SQLite: one writer)."""
        assert self._loop is not None

        async def run() -> None:
            call()

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), self._loop))

    def _probe_sync(self) -> None:
        connection = self._sqlite_connection()
        with connection.begin():
            connection.execute(_PROBE)

    async def recover(self) -> None:
        """After a failure of the database itself, open fresh connections next time. On SQLite
        that means closing EVERY connection of this process to the file: SQLite shares one
        memory map of the WAL index per file among them, and one opened while the file was
        read-only keeps every later connection read-only too, until all are closed."""
        if self._sync_engine is None:
            return
        if self._thread is not None and self._thread.is_alive() and self._loop is not None:
            # The writer's held connection too, between two batches (its loop awaits, never
            # blocks, while its own failure waits for this recovery).
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile: it stopped
                await self._between_batches(self._drop_held)
        self._sync_engine.dispose()
        self._checkpoint_engine.dispose()
        await self._engine.dispose()
        _align_sidecars(Path(str(self._sync_engine.url.database)))
        # A connection the writer opened meanwhile (before the side files were repaired) is
        # dropped at its next use.
        self._recoveries += 1
