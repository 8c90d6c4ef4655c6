"""What tests run where the ingest writer writes (``IngestWriter.in_writer``): on SQLite in the
writer's own interpreter, where a patch made in the test's interpreter would not reach; on
PostgreSQL in the writer's thread. Plain values in and out; every fault is undone by
:func:`heal` (the SQLite writer's interpreter ends with the relay anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent import interpreters
from datetime import datetime
from pathlib import Path
import sqlite3
import sys
import time
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, OperationalError

from relay.storage import batch, sqlite_writer

type _Store = Callable[[Connection, Sequence[batch.Incoming], datetime], list[batch.Outcome]]

#: The sizes of the batches a fault saw, in this interpreter.
_sizes: list[int] = []
#: A connection remembered by :func:`remember_held`.
_remembered: list[sqlite3.Connection] = []


def _writer_module() -> Any:
    """The module whose ``store_batch`` the writer calls in this interpreter: relay.ingest in
    the process's (PostgreSQL), the SQLite writer's module in its own (no relay.ingest there:
    it cannot load the report's decoder)."""
    return sys.modules.get("relay.ingest") or sqlite_writer


def _replace(store: _Store) -> None:
    _sizes.clear()
    _writer_module().store_batch = store


def heal() -> None:
    """The writer stores as it should again."""
    _writer_module().store_batch = batch.store_batch


def fail_every_batch(message: str) -> None:
    """Every batch fails as a failing disk fails it."""

    def broken(*_: Any) -> list[batch.Outcome]:
        raise OperationalError("INSERT", {}, Exception(message))

    _replace(broken)


def refuse_report(report_id: str) -> None:
    """The database refuses one report's data (whatever validation missed): every batch
    holding it fails as such."""

    def refusing(
        connection: Connection, reports: Sequence[batch.Incoming], received_at: datetime
    ) -> list[batch.Outcome]:
        _sizes.append(len(reports))
        if any(report.report_id == report_id for report in reports):
            raise DataError("INSERT …", {}, ValueError("unstorable"))
        return batch.store_batch(connection, reports, received_at)

    _replace(refusing)


def restore_after_commit(database: str, backup: str) -> None:
    """An operator restores ``backup`` over ``database`` right after the next batch commits
    (as README says: the -wal and -shm files removed, the file put in place)."""

    def store_then_restore(
        connection: Connection, reports: Sequence[batch.Incoming], received_at: datetime
    ) -> list[batch.Outcome]:
        outcomes = batch.store_batch(connection, reports, received_at)
        target, source = Path(database), Path(backup)
        if source.exists():
            for side in ("-wal", "-shm"):
                target.with_name(target.name + side).unlink(missing_ok=True)
            source.replace(target)
        return outcomes

    _replace(store_then_restore)


def sizes() -> list[int]:
    """The sizes of the batches the last fault saw."""
    return list(_sizes)


def pragma(name: str) -> Any:
    """A pragma's value on the SQLite writer's held connection (opened if none is)."""
    writer = sqlite_writer._current()
    connection = sqlite_writer._connection(writer, writer.generation)
    return connection.exec_driver_sql(f"PRAGMA {name}").scalar()


def remember_held() -> int:
    """Remember the SQLite writer's held driver connection; its id."""
    held = sqlite_writer._current().held
    assert held is not None
    raw: sqlite3.Connection = held.connection.driver_connection
    _remembered[:] = [raw]
    return id(raw)


def held_id() -> int:
    """The id of the SQLite writer's held driver connection."""
    held = sqlite_writer._current().held
    assert held is not None
    return id(held.connection.driver_connection)


def remembered_is_closed() -> bool:
    """Whether the remembered connection was closed."""
    try:
        _remembered[0].execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def interpreter_id() -> int:
    """The id of the interpreter this runs in."""
    return interpreters.get_current().id


def slow_for(delays: dict[str, float]) -> None:
    """A batch holding one of these report ids takes that long (seconds) before it is written:
    a database holding it."""

    def slow(
        connection: Connection, reports: Sequence[batch.Incoming], received_at: datetime
    ) -> list[batch.Outcome]:
        for report in reports:
            time.sleep(delays.get(report.report_id, 0.0))
        return batch.store_batch(connection, reports, received_at)

    _replace(slow)
