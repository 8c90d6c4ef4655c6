"""Storing reports: one writer task, concurrent reports committed together (group commit).

A request hands its validated report to :class:`IngestWriter` and waits. The writer takes
everything queued, stores it in ONE transaction, commits, and only then answers each request:
202 is never sent for a report that is not durable, and one fsync serves a whole batch.
A repeated ``report_id`` (per home) is answered as a duplicate and stored once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import functools
import itertools
import json
import logging
import os
from pathlib import Path
import shutil
import sqlite3
import stat
import time
from typing import Any, Literal

from sqlalchemy import and_, bindparam, case, event, func, or_, select, text, tuple_, update
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from .clock import utcnow
from .metrics import Metrics
from .schema import Report, Verdict
from .storage.bulk import DriverStatement, row_values
from .storage.db import checkpoint_sqlite, create_sync_sqlite_engine
from .storage.models import ACTIVITY, DEVICES, HOMES, IN_LIST, REPORTS, insert_or_skip

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


def _data_error(err: BaseException) -> bool:
    """The database refused a report's DATA (a value it cannot hold), not its own state:
    retrying cannot help, and the other reports of the batch are not at fault. Anything else
    (disk full, read-only, permissions, a lost server) is the database's, answered 503."""
    if isinstance(err, DBAPIError):
        code = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "pgcode", None)
        if code:  # PostgreSQL: class 22 data exception, 23 integrity violation
            return str(code)[:2] in ("22", "23")
        return isinstance(err, DataError | IntegrityError)
    if isinstance(err, StatementError):  # while binding parameters
        return isinstance(err.orig, UnicodeError | ValueError | TypeError)
    return isinstance(err, UnicodeError | ValueError | TypeError)  # sqlite3 binding, unwrapped


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

    def __post_init__(self) -> None:
        self.report_id = str(self.report.report_id)


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
    """The four statements of a batch, built and compiled once per database driver."""
    key = (dialect.name, dialect.driver)
    if (prepared := _PREPARED.get(key)) is None:
        name = dialect.name
        prepared = _PREPARED[key] = _Statements(
            DriverStatement(
                functools.partial(_report_insert, name), _REPORT_FIELDS, dialect, many=False
            ),
            DriverStatement(
                functools.partial(_device_upsert, name), _DEVICE_FIELDS, dialect, many=False
            ),
            DriverStatement(
                functools.partial(_activity_upsert, name), _ACTIVITY_FIELDS, dialect, many=False
            ),
            DriverStatement(lambda _rows: _home_update(name), _HOME_FIELDS, dialect, many=True),
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
        insert_or_skip(dialect, REPORTS)
        .values(row_values(REPORTS, _REPORT_FIELDS, rows))
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
    insert = insert_or_skip(dialect, DEVICES).values(row_values(DEVICES, _DEVICE_FIELDS, rows))
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
    insert = insert_or_skip(dialect, ACTIVITY).values(row_values(ACTIVITY, _ACTIVITY_FIELDS, rows))
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
    newest: dict[str, Report] = {}
    latest_activity: dict[str, datetime] = {}
    for submission in fresh:
        current = newest.get(submission.home_id)
        if current is None or current.sent_at <= submission.report.sent_at:
            newest[submission.home_id] = submission.report
        for moment in submission.report.activity:
            known = latest_activity.get(submission.home_id)
            if known is None or moment.at > known:
                latest_activity[submission.home_id] = moment.at
    rows = []
    for home_id, report in sorted(newest.items()):
        bridge = report.bridge
        verdict = report.verdict
        rows.append(
            (  # in _HOME_FIELDS order
                home_id,
                received_at,
                report.sent_at,
                bridge.reachable,
                None if bridge.reachable else (bridge.offline_since or report.sent_at),
                report.counters,
                verdict.as_json() if isinstance(verdict, Verdict) else None,
                latest_activity.get(home_id),
            )
        )
    statement.execute(connection, rows)


def _home_update(dialect: str) -> Any:
    homes = HOMES
    # Every parameter typed as its column, so that each is bound as the column's type says
    # (untyped, SQLite's driver wrote a datetime in a format of its own).
    activity = bindparam("b_activity", type_=homes.c.last_activity_at.type)
    received = bindparam("b_received", type_=homes.c.last_report_at.type)
    # The bridge fields follow the newest report only; a late, older report just counts as
    # "heard from the home".
    newer = or_(
        homes.c.last_report_sent_at.is_(None),
        homes.c.last_report_sent_at <= bindparam("b_sent"),
    )
    return (
        update(homes)
        .where(homes.c.id == bindparam("b_home"))
        .values(
            # Replicas' batches commit in any order: the latest moment wins.
            last_report_at=_greatest(
                dialect, func.coalesce(homes.c.last_report_at, received), received
            ),
            # Activity may come in any report, late ones too: the newest moment wins.
            last_activity_at=case(
                (activity.is_(None), homes.c.last_activity_at),
                else_=_greatest(
                    dialect, func.coalesce(homes.c.last_activity_at, activity), activity
                ),
            ),
            last_report_sent_at=case(
                (newer, bindparam("b_sent")), else_=homes.c.last_report_sent_at
            ),
            bridge_reachable=case(
                (newer, bindparam("b_reachable", type_=homes.c.bridge_reachable.type)),
                else_=homes.c.bridge_reachable,
            ),
            bridge_offline_since=case(
                (newer, bindparam("b_offline_since", type_=homes.c.bridge_offline_since.type)),
                else_=homes.c.bridge_offline_since,
            ),
            counters=case(
                (newer, bindparam("b_counters", type_=homes.c.counters.type)),
                else_=homes.c.counters,
            ),
            verdict=case(
                (newer, bindparam("b_verdict", type_=homes.c.verdict.type)),
                else_=homes.c.verdict,
            ),
        )
    )


def _align_sidecars(database: Path) -> None:
    """SQLite creates ``-wal`` and ``-shm`` with the database file's mode of that moment: made
    while the database was read-only, they stay read-only after it is writable again (and so
    does every connection). Give them the database's mode back once it is writable."""
    try:
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


class IngestWriter:
    """The single writer task behind every ingest request.

    On SQLite the whole batch runs on a plain ``sqlite3`` connection in one dedicated thread:
    one hand-over per batch instead of one per statement (aiosqlite's), which is what bounded
    throughput. On PostgreSQL it runs on the async engine through ``run_sync``.
    """

    def __init__(self, engine: AsyncEngine, metrics: Metrics, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._metrics = metrics
        self._max_batch = max_batch
        self._queue: asyncio.Queue[Submission] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._sync_engine: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        #: When and why the last batch failed, if the database failed it and none succeeded
        #: since.
        self.last_failure: tuple[float, str] | None = None
        if engine.dialect.name == "sqlite":
            self._sync_engine = create_sync_sqlite_engine(engine.url)
            event.listen(self._sync_engine, "connect", _writer_pragmas)
            self._checkpoint_engine = create_sync_sqlite_engine(engine.url)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="hpoll-ingest")

    @property
    def pending(self) -> int:
        """Reports waiting for the writer."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start writing."""
        self._task = asyncio.create_task(self._run(), name="hpoll-ingest-writer")
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
        """Write what is queued, then stop."""
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()
            self._checkpoint_engine.dispose()
            self._sync_engine = None

    async def probe(self) -> str | None:
        """Commit a write that changes nothing, the way reports are written: None when it
        commits, else why not (a fixed description, no SQL or parameters)."""
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
                if self._thread is not None:
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(self._thread, self._probe_sync)
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

    def _probe_sync(self) -> None:
        assert self._sync_engine is not None
        with self._sync_engine.begin() as connection:
            connection.execute(_PROBE)

    async def recover(self) -> None:
        """After a failure of the database itself, open fresh connections next time. On SQLite
        that means closing EVERY connection of this process to the file: SQLite shares one
        memory map of the WAL index per file among them, and one opened while the file was
        read-only keeps every later connection read-only too, until all are closed."""
        if self._sync_engine is None:
            return
        self._sync_engine.dispose()
        self._checkpoint_engine.dispose()
        await self._engine.dispose()
        _align_sidecars(Path(str(self._sync_engine.url.database)))

    async def submit(self, home_id: str, body: str, report: Report) -> Outcome:
        """Queue a validated report; return once it is committed (or raise StorageError)."""
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        await self._queue.put(Submission(home_id, body, report, done))
        return await done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _store_in_thread(self, batch: list[Submission], received_at: datetime) -> list[Outcome]:
        assert self._sync_engine is not None
        with self._sync_engine.begin() as connection:
            outcomes = store_batch(connection, batch, received_at)
        self._bound_wal()
        return outcomes

    def _bound_wal(self) -> None:
        """Checkpoint the WAL from the writer itself once it is large: the background PASSIVE
        checkpoint cannot restart a WAL that a busy writer keeps appending to."""
        assert self._sync_engine is not None
        wal = f"{self._sync_engine.url.database}-wal"
        try:
            if os.path.getsize(wal) < WAL_CHECKPOINT_BYTES:
                return
        except OSError:
            return
        with self._sync_engine.connect() as connection:
            # Readers hold it back only briefly; a writer waiting 30 s for them would not.
            connection.exec_driver_sql("PRAGMA busy_timeout=200")
            try:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                connection.exec_driver_sql("PRAGMA busy_timeout=30000")

    async def _store(self, batch: list[Submission]) -> list[Outcome]:
        if self._thread is not None:
            return await asyncio.get_running_loop().run_in_executor(
                self._thread, self._store_in_thread, batch, utcnow()
            )
        async with self._engine.begin() as connection:
            return await connection.run_sync(store_batch, batch, utcnow())

    async def _write(self, batch: list[Submission]) -> None:
        try:
            outcomes = await self._store(batch)
        except Exception as err:
            self._metrics.db_errors += 1
            _LOGGER.error("storing %d reports failed: %s", len(batch), describe(err))
            if not _data_error(err):
                self.last_failure = (time.monotonic(), describe(err))
                await self.recover()
            elif len(batch) > 1:
                # One report's data broke the batch: halve until it stands alone, so no other
                # report pays for it (log2(batch) more transactions, only on this rare path).
                middle = len(batch) // 2
                await self._write(batch[:middle])
                await self._write(batch[middle:])
                return
            error = (
                UnstorableError("the database cannot store this report's data")
                if _data_error(err)
                else StorageError("the database is unavailable")
            )
            for submission in batch:
                if not submission.done.done():
                    submission.done.set_exception(error)
            return
        self._metrics.batches += 1
        self.last_failure = None
        for submission, outcome in zip(batch, outcomes, strict=True):
            if not submission.done.done():
                submission.done.set_result(outcome)
