"""Storing reports: one writer, concurrent reports committed together (group commit).

A request hands its validated report to :class:`IngestWriter` and waits. The writer takes
everything queued, stores it in ONE transaction (:mod:`relay.storage.batch`), commits, and only
then answers each request: 202 is never sent for a report that is not durable, and one fsync
serves a whole batch. A repeated ``report_id`` (per home) is answered as a duplicate and stored
once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
import concurrent.futures
import contextlib
from dataclasses import dataclass, field
import logging
import os
from pathlib import Path
import random
import shutil
import stat
import threading
import time
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from .clock import utcnow
from .metrics import Metrics
from .schema import Report, Verdict
from .storage import sqlite_writer
from .storage.batch import Incoming, Outcome, store_batch
from .storage.errors import WriterFailure, describe, is_conflict, is_data_error
from .storage.interpreter import Interpreter, InterpreterError
from .storage.sqlite_file import checkpoint_sqlite, create_sync_sqlite_engine

_LOGGER = logging.getLogger(__name__)

CHECKPOINT_EVERY = 1.0
MAX_BATCH = 512
#: /healthz says 503 when the SQLite database's disk has less room than this.
MIN_FREE_BYTES = 4 * 1024 * 1024
#: Over this much WAL the writer checkpoints it itself (TRUNCATE), between two batches.
WAL_CHECKPOINT_BYTES = 16 * 1024 * 1024


class StorageError(RuntimeError):
    """The report could not be stored (the client should retry; nothing was acknowledged)."""


class UnstorableError(StorageError):
    """The database refuses this report's data itself: retrying cannot help (422)."""


#: A batch that lost a conflict to another transaction (PostgreSQL: a deadlock or a
#: serialization failure) is written again up to this many times before its requests get 503.
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

#: The write /healthz commits on PostgreSQL (SQLite's writer commits the same one).
_PROBE = text(sqlite_writer.PROBE)

_encode = msgspec.json.Encoder().encode


def incoming(home_id: str, body: str, report: Report) -> Incoming:
    """What the writer stores of a validated report: plain values, made by the request (on
    the serving loop, which has time to spare while the writer writes the previous batch; the
    counters and verdict encoded with msgspec, not by the writer's ``json.dumps``)."""
    verdict = report.verdict
    bridge = report.bridge
    return Incoming(
        home_id,
        # As stored: the canonical UUID text (msgspec writes str()'s text, in C: 0.5 against
        # 1.2 µs; the request's answer says it too).
        _encode(report.report_id)[1:-1].decode(),
        body,
        report.sent_at,
        tuple(
            (d.id, d.name, d.room, d.kind, d.battery, d.battery_state, d.connectivity, d.last_seen)
            for d in report.devices
        ),
        tuple((a.room or "", a.at) for a in report.activity),
        bridge.reachable,
        bridge.offline_since,
        _encode(report.counters).decode(),
        _encode(verdict.as_json()).decode() if isinstance(verdict, Verdict) else None,
    )


@dataclass(slots=True)
class Submission:
    """One report waiting for the writer."""

    incoming: Incoming
    done: asyncio.Future[Outcome]


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
    statements; issue 16.)

    On SQLite the thread runs each batch in an interpreter of its own
    (:mod:`relay.storage.sqlite_writer`, with a GIL of its own), on a plain ``sqlite3``
    connection held from batch to batch; the serving loop's GIL is not held while the batch is
    written. On PostgreSQL it runs on an asyncpg connection of the writer's own, held open (no
    pool checkout and pre-ping per batch), in the thread's own event loop (asyncpg and
    SQLAlchemy's asyncio adapter need the process's interpreter).
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
        #: SQLite: the database file, and the writer's interpreter (made by its thread). Its
        #: connection is held from batch to batch (a pool checkout and return per batch were a
        #: sixth of the writer's time) and opened afresh after a :meth:`recover`, which
        #: counts in ``_recoveries``.
        self._database: str | None = None
        self._interpreter: Interpreter | None = None
        #: SQLite: the batch sent to the interpreter as soon as the one before it committed,
        #: and its call's number (see _store).
        self._ahead: tuple[list[Submission], int] | None = None
        #: Calls asked for between two batches and not made yet (see _between_batches).
        self._waiting: set[concurrent.futures.Future[Any]] = set()
        self._recoveries = 0
        self._checkpointer: asyncio.Task[None] | None = None
        #: When and why the last batch failed, if the database failed it and none succeeded
        #: since (a batch that only lost a conflict to another transaction does not count).
        self.last_failure: tuple[float, str] | None = None
        #: Since when (monotonic) the writer has been writing its current batch, if it is.
        self._writing_since: float | None = None
        if engine.dialect.name == "sqlite":
            self._database = str(engine.url.database)
            self._checkpoint_engine = create_sync_sqlite_engine(engine.url)

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
        if self._database is not None:
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
        if self._database is not None:
            self._checkpoint_engine.dispose()

    # -- the writer thread ---------------------------------------------------------------------

    def _thread_main(self, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._work(started))
        except BaseException:
            _LOGGER.exception("the ingest writer stopped")
        finally:
            self._stopping = True
            loop.close()
            # A call asked for between two batches that no batch came after.
            for waiting in list(self._waiting):
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    waiting.set_exception(StorageError("the ingest writer stopped"))
            serving, finished = self._serving, self._finished
            assert serving is not None
            assert finished is not None
            # Whatever is still pending (only if the writer died) is not left waiting.
            stranded = [*(self._ahead[0] if self._ahead else ()), *self._pending]
            self._ahead = None
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
        try:
            self._open()
        finally:
            started.set()  # whether or not the writer could start: start() waits for this
        serving = self._serving
        assert serving is not None
        try:
            while True:
                if self._ahead is not None:
                    batch = self._ahead[0]
                elif self._pending:
                    batch = self._take()
                else:
                    if self._stopping:
                        return
                    self._idle = True
                    self._wake.clear()
                    if not self._pending and not self._stopping:  # else it came meanwhile
                        await self._wake.wait()
                    self._idle = False
                    continue
                written = _Written()
                if self._ahead is None:  # else since it was sent
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
                self._send_ahead()
                serving.call_soon_threadsafe(self._deliver, batch, written)
                # Let a probe waiting for its turn (see probe) run between two batches.
                await asyncio.sleep(0)
        finally:
            await self._close()

    def _take(self) -> list[Submission]:
        """The next batch: everything pending, at most ``max_batch``."""
        return [self._pending.popleft() for _ in range(min(len(self._pending), self._max_batch))]

    def _open(self) -> None:
        """What the writer writes with: on SQLite its interpreter; on PostgreSQL its engine."""
        if self._database is not None:
            self._interpreter = _sqlite_interpreter(self._engine)
            return
        url = self._engine.url
        # asyncpg's own bound on every statement (another driver would refuse the option).
        bound = {"command_timeout": STATEMENT_TIMEOUT} if url.get_driver_name() == "asyncpg" else {}
        self._own_engine = create_async_engine(url, poolclass=NullPool, connect_args=bound)

    async def _close(self) -> None:
        await self._drop_connection()
        if self._own_engine is not None:
            await self._own_engine.dispose()
        if (interpreter := self._interpreter) is not None:
            self._interpreter = None
            try:
                interpreter.call(sqlite_writer.stop)
            finally:
                interpreter.close()

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
                if is_conflict(err) and conflicts < CONFLICT_RETRIES:
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
                if is_data_error(err):
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
                if not is_conflict(err):
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
        if (interpreter := self._interpreter) is not None:
            if self._ahead is not None and self._ahead[0] is batch:
                call, self._ahead = self._ahead[1], None
            else:
                call = self._send(interpreter, batch)
            # This thread lets go of the process's GIL until the interpreter has written it.
            stored: list[Outcome] | WriterFailure = interpreter.receive(call)
            if isinstance(stored, WriterFailure):
                raise stored
            return stored
        reports = [submission.incoming for submission in batch]
        if self._connection is None:
            assert self._own_engine is not None
            self._connection = await self._own_engine.connect()
        async with self._connection.begin():
            return await self._connection.run_sync(store_batch, reports, utcnow())

    def _send_ahead(self) -> None:
        """SQLite: the next batch goes to the interpreter once a batch is written, before that
        one's requests are answered. Handed over afterwards, the interpreter waited 1.35-1.6 ms
        between two batches of ~21 (a 3.7 ms cycle; 1.0-1.1 ms now), as this thread waited for
        the busy serving loop's GIL at each step. Not while a call waits for its turn between
        two batches (it would wait behind this one)."""
        interpreter = self._interpreter
        if interpreter is None or self._ahead is not None or self._waiting:
            return
        if self._stopping or not self._pending:
            return
        batch = self._take()
        try:
            call = self._send(interpreter, batch)
        except Exception:  # it is written (and fails, visibly) as the next batch
            self._pending.extendleft(reversed(batch))
            return
        self._ahead = (batch, call)
        self._writing_since = time.monotonic()

    def _send(self, interpreter: Interpreter, batch: list[Submission]) -> int:
        reports = [submission.incoming for submission in batch]
        return interpreter.send(sqlite_writer.store, reports, utcnow(), self._recoveries)

    async def _after_failure(self) -> None:
        """After a failure of the database itself: fresh connections for the next batch."""
        await self._drop_connection()
        if self._database is not None and self._serving is not None:
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

    def _drop_held(self) -> None:
        """SQLite: close the writer's held connection for good (in the writer's thread)."""
        if self._interpreter is not None:
            # An interpreter that has stopped holds nothing anyone can use.
            with contextlib.suppress(InterpreterError):
                self._interpreter.call(sqlite_writer.drop)

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

    async def submit(self, report: Incoming) -> Outcome:
        """Queue a validated report (see :func:`incoming`); return once it is committed (or
        raise StorageError)."""
        if self._stopping or self._loop is None:
            raise StorageError("the relay is stopping")
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append(Submission(report, done))
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
        if self._database is not None:
            try:
                free = shutil.disk_usage(Path(self._database).parent).free
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
                if self._database is not None:
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

    async def in_writer[T](self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` where the writer writes, between two batches: in its thread, and on
        SQLite in its interpreter (``call`` then a module's function, the arguments and the
        result plain values; the probe's write, and the tests' look inside, go this way)."""
        interpreter = self._interpreter

        def where_written() -> T:
            if interpreter is not None:
                return interpreter.call(call, *args)
            return call(*args)

        return await self._between_batches(where_written)

    async def _between_batches[T](self, call: Callable[[], T]) -> T:
        """Run ``call`` in the writer's thread, between two batches (SQLite: one writer); a
        writer that stops first fails it (StorageError), never leaves it waiting."""
        loop = self._loop
        if self._stopping or loop is None:
            raise StorageError("the ingest writer is not running")
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(call())
                except BaseException as err:  # handed to the caller
                    done.set_exception(err)

        self._waiting.add(done)
        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # its loop is closed: it has stopped
            self._waiting.discard(done)
            raise StorageError("the ingest writer is not running") from None
        try:
            return await asyncio.wrap_future(done)
        finally:
            self._waiting.discard(done)

    def _probe_sync(self) -> None:
        assert self._interpreter is not None
        if (failure := self._interpreter.call(sqlite_writer.probe, self._recoveries)) is not None:
            raise failure

    async def recover(self) -> None:
        """After a failure of the database itself, open fresh connections next time. On SQLite
        that means closing EVERY connection of this process to the file: SQLite shares one
        memory map of the WAL index per file among them, and one opened while the file was
        read-only keeps every later connection read-only too, until all are closed."""
        if self._database is None:
            return
        if self._thread is not None and self._thread.is_alive():
            # The writer's held connection too, between two batches (its loop awaits, never
            # blocks, while its own failure waits for this recovery). A writer stopping
            # closes it itself.
            with contextlib.suppress(StorageError):
                await self._between_batches(self._drop_held)
        self._checkpoint_engine.dispose()
        await self._engine.dispose()
        _align_sidecars(Path(self._database))
        # A connection the writer opened meanwhile (before the side files were repaired) is
        # dropped at its next use.
        self._recoveries += 1


def _sqlite_interpreter(engine: AsyncEngine) -> Interpreter:
    """The SQLite writer's interpreter, its writer started (:mod:`relay.storage.sqlite_writer`)."""
    interpreter = Interpreter()
    try:
        interpreter.call(
            sqlite_writer.start,
            engine.url.render_as_string(hide_password=False),
            WAL_CHECKPOINT_BYTES,
        )
    except BaseException:
        interpreter.close()
        raise
    return interpreter
