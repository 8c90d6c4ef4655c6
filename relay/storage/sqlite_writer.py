"""The SQLite ingest writer's own side, run in an interpreter of its own.

:class:`relay.ingest.IngestWriter` starts one ``concurrent.interpreters`` interpreter for its
thread on SQLite and calls the functions below in it, one at a time, from that thread only.
An interpreter has a GIL of its own: the batch's statements, their binding and the commit no
longer take turns with the serving event loop for one lock (they were half of the process's
GIL time, and each of the driver's steps let go of the GIL and waited to take it back from the
busy loop). The serving process stays one process, with one database writer.

What crosses is plain values only (interpreters share no objects): :class:`Incoming` rows and
a moment in, the outcomes or a :class:`WriterFailure` back (exceptions do not cross, so a
failure is classified and described here, by the same rules as anywhere else).

State kept here: the engine, the file guard (see ``relay.storage.db.FileGuard``) and the held
connection, kept from batch to batch and opened afresh after a recovery of the relay
(``generation``: the number of recoveries the caller has seen).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
import os
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url

from .batch import Incoming, Outcome, store_batch
from .db import FileGuard, create_sync_sqlite_engine, guard_file
from .errors import WriterFailure, describe, is_data_error

#: The write a probe commits: alembic's one-row table, set to itself (no schema of its own).
PROBE = "UPDATE alembic_version SET version_num = version_num"


def _writer_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """The writer never checkpoints (a checkpoint's fsync would stall a batch; a separate
    connection does it in the background), and keeps its temporary data (a batch's RETURNING
    rows, statement journals: at most one batch) in memory: in files, SQLite created, wrote
    and deleted one in /var/tmp for every other batch."""
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
    dbapi_connection.execute("PRAGMA temp_store=MEMORY")


@dataclass(slots=True)
class _Writer:
    engine: Engine
    guard: FileGuard | None
    #: Over this much WAL the writer checkpoints it itself (TRUNCATE), after a batch.
    wal_checkpoint_bytes: int
    held: Connection | None = None
    #: The caller's recoveries when ``held`` was opened.
    generation: int = 0


_writer: _Writer | None = None


def start(url: str, wal_checkpoint_bytes: int) -> None:
    """Make the engine (nothing is opened yet)."""
    global _writer  # noqa: PLW0603 (this interpreter's one writer)
    engine = create_sync_sqlite_engine(make_url(url))
    event.listen(engine, "connect", _writer_pragmas)
    _writer = _Writer(engine, guard_file(engine), wal_checkpoint_bytes)


def stop() -> None:
    """Close everything."""
    global _writer  # noqa: PLW0603
    if _writer is not None:
        drop()
        _writer.engine.dispose()
        _writer = None


def store(
    batch: list[Incoming], received_at: datetime, generation: int
) -> list[Outcome] | WriterFailure:
    """Store ``batch`` in ONE transaction and commit: each report's outcome, in batch order."""
    writer = _current()
    try:
        connection = _connection(writer, generation)
        with connection.begin():
            outcomes = store_batch(connection, batch, received_at)
        if writer.guard is not None:
            # Committed into the file the relay opened; if another was put in its place
            # meanwhile, nobody will read these: 503, not 202 (the homes send them again).
            writer.guard.check()
        _bound_wal(writer, connection)
    except Exception as err:  # handed back: exceptions do not cross
        return WriterFailure(describe(err), is_data_error(err))
    return outcomes


def probe(generation: int) -> WriterFailure | None:
    """Commit a write that changes nothing, the way reports are written."""
    writer = _current()
    try:
        connection = _connection(writer, generation)
        with connection.begin():
            connection.execute(text(PROBE))
    except Exception as err:  # handed back: exceptions do not cross
        return WriterFailure(describe(err), is_data_error(err))
    return None


def drop() -> None:
    """Close the held connection for good (not back into the pool: a connection of a
    failure's time must not be handed out again); the next batch opens a fresh one."""
    writer = _current()
    if (connection := writer.held) is not None:
        writer.held = None
        with contextlib.suppress(Exception):  # it may be broken: nothing to save
            connection.invalidate()
        with contextlib.suppress(Exception):
            connection.close()


def _current() -> _Writer:
    if _writer is None:
        raise RuntimeError("the SQLite writer was not started")
    return _writer


def _connection(writer: _Writer, generation: int) -> Connection:
    """The held connection; a fresh one after a recovery the caller has seen since."""
    if writer.held is not None and writer.generation != generation:
        drop()
    if writer.guard is not None:
        # Held, it is not checked out per batch (where the pool checks the file): a file
        # put in its place or moved away fails the batch (503) before it is written.
        try:
            writer.guard.check()
        except Exception:
            drop()
            raise
    if writer.held is None:
        writer.generation = generation
        writer.held = writer.engine.connect()
    return writer.held


def _bound_wal(writer: _Writer, connection: Connection) -> None:
    """Checkpoint the WAL from the writer itself once it is large: the background PASSIVE
    checkpoint cannot restart a WAL that a busy writer keeps appending to."""
    # Beside the file itself: SQLite follows a symbolic link to it.
    wal = f"{os.path.realpath(str(writer.engine.url.database))}-wal"
    try:
        if os.path.getsize(wal) < writer.wal_checkpoint_bytes:
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
