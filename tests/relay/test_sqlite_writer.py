"""The SQLite writer's interpreter side (relay/storage/sqlite_writer.py), run here in the test's
own interpreter (where coverage sees it; tests/relay/test_api.py checks that the relay runs
it in another)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
import pickle

import pytest
from sqlalchemy import func, select

from relay.admin import Admin, NewHome
from relay.storage import sqlite_writer
from relay.storage.db import create_engine, upgrade
from relay.storage.errors import WriterFailure, describe, is_data_error
from relay.storage.models import REPORTS
from relay.storage.sqlite_file import FILE_MISSING, FILE_REPLACED
from tests.relay import in_writer
from tests.relay.conftest import MakeIncoming


@pytest.fixture
async def database(tmp_path: Path) -> tuple[Path, NewHome]:
    path = tmp_path / "relay.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade(engine)
    home = await Admin(engine).add_home("Writer", "Europe/Berlin")
    await engine.dispose()
    return path, home


@pytest.fixture
def writer(database: tuple[Path, NewHome]) -> Iterator[None]:
    """This interpreter's SQLite writer, started on the database (a small WAL bound)."""
    sqlite_writer.start(f"sqlite+aiosqlite:///{database[0]}", 64 * 1024)
    yield
    sqlite_writer.stop()


def _stored(path: Path) -> int:
    from sqlalchemy import create_engine as sync_engine

    engine = sync_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(REPORTS))
    engine.dispose()
    return int(count or 0)


@pytest.mark.usefixtures("writer")
def test_a_batch_is_stored_on_one_held_connection_until_the_generation_moves(
    database: tuple[Path, NewHome], make_incoming: MakeIncoming
) -> None:
    path, home = database
    reports = make_incoming(home.id, 3)
    assert sqlite_writer.store(reports, datetime.now(UTC), 0) == ["stored"] * 3
    held = sqlite_writer._current().held
    assert sqlite_writer.store(reports[:1], datetime.now(UTC), 0) == ["duplicate"]
    assert sqlite_writer._current().held is held
    assert sqlite_writer.probe(0) is None
    assert sqlite_writer._current().held is held
    assert sqlite_writer.probe(1) is None  # a recovery since: a fresh connection
    assert sqlite_writer._current().held is not held
    assert _stored(path) == 3


@pytest.mark.usefixtures("writer")
def test_a_refused_report_comes_back_as_the_datas_failure(
    database: tuple[Path, NewHome], make_incoming: MakeIncoming
) -> None:
    """Exceptions do not cross interpreters: a failure is classified and described here."""
    path, home = database
    (report,) = make_incoming(home.id, 1)
    failure = sqlite_writer.store([report._replace(body=None)], datetime.now(UTC), 0)
    assert isinstance(failure, WriterFailure)
    assert failure.data
    assert is_data_error(failure)
    assert describe(failure) == "IntegrityError: NOT NULL constraint failed: reports.payload"
    # The connection is fine: the report alone is not stored, the next batch is.
    assert sqlite_writer.store([report], datetime.now(UTC), 0) == ["stored"]
    assert _stored(path) == 1


@pytest.mark.usefixtures("writer")
def test_a_file_replaced_or_missing_fails_the_batch_as_the_databases(
    database: tuple[Path, NewHome],
    make_incoming: MakeIncoming,
    tmp_path: Path,
) -> None:
    path, home = database
    assert sqlite_writer.store(make_incoming(home.id, 1), datetime.now(UTC), 0) == ["stored"]
    moved = tmp_path / "moved.db"
    path.rename(moved)
    failure = sqlite_writer.store(make_incoming(home.id, 1), datetime.now(UTC), 0)
    assert isinstance(failure, WriterFailure)
    assert (failure.description, failure.data) == (f"OperationalError: {FILE_MISSING}", False)
    assert sqlite_writer._current().held is None  # dropped, never handed out again
    assert not path.exists()  # nothing made in its place
    probed = sqlite_writer.probe(0)
    assert probed is not None
    assert probed.description == f"OperationalError: {FILE_MISSING}"
    path.write_bytes(moved.read_bytes())  # another file in its place
    replaced = sqlite_writer.store(make_incoming(home.id, 1), datetime.now(UTC), 0)
    assert isinstance(replaced, WriterFailure)
    assert replaced.description == f"OperationalError: {FILE_REPLACED.splitlines()[0]}"


@pytest.mark.usefixtures("writer")
def test_the_writer_keeps_the_wal_bounded_and_writes_it_over_from_its_start(
    database: tuple[Path, NewHome], make_incoming: MakeIncoming
) -> None:
    """With nobody reading, the writer's PASSIVE checkpoint lets the WAL start over: its file
    is written again from the start (cut back to the threshold, never emptied: emptying it
    cost the batches 25-37 ms a time), and it stays near its threshold."""
    path, home = database
    wal = path.with_name(path.name + "-wal")
    sizes = []
    for _ in range(40):
        assert (
            sqlite_writer.store(make_incoming(home.id, 5), datetime.now(UTC), 0) == ["stored"] * 5
        )
        sizes.append(wal.stat().st_size)
    # Without the writer's own checkpoint, 200 reports make about 1.9 MB of WAL here.
    assert max(sizes) < 256 * 1024, max(sizes)
    full = sizes.index(next(size for size in sizes if size >= 64 * 1024))
    assert min(sizes[full:]) >= 64 * 1024  # written over, not emptied (TRUNCATE)
    assert _stored(path) == 200


def test_a_reader_keeping_the_wal_from_starting_over_makes_the_writer_truncate_it(
    database: tuple[Path, NewHome], make_incoming: MakeIncoming
) -> None:
    """A reader that began on the WAL's last frame lets the writer's checkpoint copy it
    whole, yet keeps it from starting over while it reads: when the file has grown past that
    size, the writer waits for readers (200 ms) and empties it (TRUNCATE), as it did always."""
    import sqlite3

    from relay.storage.batch import store_batch

    path, home = database
    sqlite_writer.start(f"sqlite+aiosqlite:///{path}", 1)  # every batch is over the threshold
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        writer = sqlite_writer._current()
        connection = sqlite_writer._connection(writer, 0)
        executed: list[str] = []
        connection.connection.driver_connection.set_trace_callback(executed.append)

        def write() -> None:
            with connection.begin():
                store_batch(connection, make_incoming(home.id, 5), datetime.now(UTC))

        write()
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM reports").fetchone()  # on the last frame
        sqlite_writer._bound_wal(writer, connection)
        assert writer.copied_at is not None  # copied whole, the reader notwithstanding
        assert not [sql for sql in executed if "TRUNCATE" in sql]
        write()  # cannot start over: the reader is still on it
        sqlite_writer._bound_wal(writer, connection)
        assert [sql for sql in executed if "TRUNCATE" in sql]
        wal = path.with_name(path.name + "-wal")
        blocked = wal.stat().st_size  # two batches: it could not start over
        reader.execute("COMMIT")
        for _ in range(2):  # copied whole once more, then it starts over: one batch in it
            write()
            sqlite_writer._bound_wal(writer, connection)
        assert wal.stat().st_size < blocked
    finally:
        reader.close()
        sqlite_writer.stop()


def test_a_failure_crosses_interpreters_whole() -> None:
    """What the writer's interpreter hands back is pickled: it must be made again the same."""
    failure = pickle.loads(pickle.dumps(WriterFailure("IntegrityError: x", True)))  # noqa: S301
    assert (failure.description, failure.data) == ("IntegrityError: x", True)
    assert str(failure) == "IntegrityError: x"


def test_nothing_is_stored_before_start() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        sqlite_writer.probe(0)


async def test_a_call_asked_for_while_the_writer_stops_is_answered_not_left_waiting(
    database: tuple[Path, NewHome],
) -> None:
    """Closing the writer's interpreter takes a tenth of a second: a recovery or a call asked
    for meanwhile used to wait forever for a batch that never came."""
    import asyncio

    from relay.ingest import IngestWriter, StorageError
    from relay.metrics import Metrics
    from relay.storage.db import create_engine

    engine = create_engine(f"sqlite+aiosqlite:///{database[0]}")
    writer = IngestWriter(engine, Metrics())
    writer.start()
    try:
        assert await writer.probe() is None
        stopping = asyncio.create_task(writer.stop())
        while writer._interpreter is not None:  # noqa: ASYNC110 (set by the writer thread)
            await asyncio.sleep(0)
        await asyncio.wait_for(writer.recover(), 10)
        with pytest.raises(StorageError, match="not running"):
            await asyncio.wait_for(writer.in_writer(in_writer.interpreter_id), 10)
        await stopping
        with pytest.raises(StorageError, match="not running"):
            await writer.in_writer(in_writer.interpreter_id)
    finally:
        await engine.dispose()
