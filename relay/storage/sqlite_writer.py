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

State kept here: the engine, the file guard (``relay.storage.sqlite_file.FileGuard``) and the
held connection, kept from batch to batch and opened afresh after a recovery of the relay
(``generation``: the number of recoveries the caller has seen).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
import functools
import os
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url

from .batch import Incoming, Outcome, store_batch
from .errors import WriterFailure, describe, is_data_error
from .sqlite_file import FileGuard, create_sync_sqlite_engine, guard_file

#: The write a probe commits: alembic's one-row table, set to itself (no schema of its own).
PROBE = "UPDATE alembic_version SET version_num = version_num"


def _writer_pragmas(wal_bytes: int, dbapi_connection: Any, _record: Any) -> None:
    """The writer never checkpoints on its own (SQLite's automatic checkpoint would stall a
    batch on every 1,000 pages; see _bound_wal), keeps its temporary data (a batch's RETURNING
    rows, statement journals: at most one batch) in memory (in files, SQLite created, wrote
    and deleted one in /var/tmp for every other batch), and cuts the WAL file back to
    ``wal_bytes`` when it starts over (so its size says how much it holds: see _bound_wal)."""
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
    dbapi_connection.execute("PRAGMA temp_store=MEMORY")
    dbapi_connection.execute(f"PRAGMA journal_size_limit={int(wal_bytes)}")


@dataclass(slots=True)
class _Writer:
    engine: Engine
    guard: FileGuard | None
    #: Over this much WAL the writer checkpoints it itself, after a batch (see _bound_wal).
    wal_checkpoint_bytes: int
    #: The WAL file, beside the database file itself (SQLite follows a symbolic link to it;
    #: a link later pointed elsewhere is a replaced file, which the guard refuses).
    wal: str
    held: Connection | None = None
    #: The caller's recoveries when ``held`` was opened.
    generation: int = 0
    #: The WAL file's size when a PASSIVE checkpoint last copied it whole (None once it has
    #: started over since): growing past it says a reader kept it from starting over.
    copied_at: int | None = None


_writer: _Writer | None = None


def start(url: str, wal_checkpoint_bytes: int) -> None:
    """Make the engine (nothing is opened yet)."""
    global _writer  # noqa: PLW0603 (this interpreter's one writer)
    engine = create_sync_sqlite_engine(make_url(url))
    event.listen(engine, "connect", functools.partial(_writer_pragmas, wal_checkpoint_bytes))
    wal = f"{os.path.realpath(str(engine.url.database))}-wal"
    _writer = _Writer(engine, guard_file(engine), wal_checkpoint_bytes, wal)


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
    """Keep the WAL bounded from the writer itself, between two batches: the background
    checkpoint (relay/ingest.py) never completes while a busy writer keeps appending, and an
    incomplete checkpoint never lets the WAL start over.

    The WAL file growing past the threshold says it has not started over for that long (when
    it does, the writer's connection cuts it back to the threshold: _writer_pragmas). A PASSIVE
    checkpoint here, with no batch being written, copies it whole (a few ms) unless a reader's
    snapshot holds it back; the next batch then writes the file from its start again, over
    blocks the file already has. Only when a reader held it back (the checkpoint could not
    copy it all, or a reader still on it kept it from starting over) does the writer wait for
    readers (200 ms at most) and TRUNCATE it (the file emptied: 25-37 ms a time at 2,600
    reports/s, every batch waiting, when it was done every time)."""
    try:
        size = os.path.getsize(writer.wal)
    except OSError:
        return
    if size <= writer.wal_checkpoint_bytes:
        writer.copied_at = None
        return
    if writer.copied_at is None or size <= writer.copied_at:
        with connection.begin():  # SQLAlchemy's; checkpoints change no data
            busy, frames, copied = connection.exec_driver_sql(
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).one()
        if not busy and frames == copied:
            writer.copied_at = size
            return
    # Readers hold it back only briefly; a writer waiting 30 s for them would not.
    with connection.begin():
        connection.exec_driver_sql("PRAGMA busy_timeout=200")
        try:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.exec_driver_sql("PRAGMA busy_timeout=30000")
    writer.copied_at = None
