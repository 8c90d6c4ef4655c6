"""What a failed write says: the report's data, a conflict with another transaction, or the
database itself; and how it is described (for /healthz and logs, never with data in it).

Free of the report's decoder, like :mod:`relay.storage.batch`: the SQLite writer's interpreter
classifies its own failures (:mod:`relay.storage.sqlite_writer`) and hands back a
:class:`WriterFailure`, as exceptions do not cross interpreters.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

#: PostgreSQL rolled the transaction back to let another one through: a deadlock (40P01) or a
#: serialization failure (40001). Nothing is wrong with the batch or the database.
_CONFLICTS = frozenset({"40001", "40P01"})


class WriterFailure(Exception):
    """A write failed in the SQLite writer's interpreter, as it classified and described it
    (returned from there, pickled: both are arguments, so that it is made again the same)."""

    def __init__(self, description: str, data: bool) -> None:
        super().__init__(description, data)
        self.description = description
        #: The report's data was refused (see :func:`is_data_error`), not the database.
        self.data = data

    def __str__(self) -> str:
        return self.description


def sqlstate(err: BaseException) -> str | None:
    """PostgreSQL's SQLSTATE of a failed statement (None on SQLite)."""
    if isinstance(err, DBAPIError):
        code = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "pgcode", None)
        return str(code) if code else None
    return None


def is_data_error(err: BaseException) -> bool:
    """The database refused a report's DATA (a value it cannot hold), not its own state:
    retrying cannot help, and the other reports of the batch are not at fault. Anything else
    (disk full, read-only, permissions, a lost server) is the database's, answered 503."""
    if isinstance(err, WriterFailure):
        return err.data
    if isinstance(err, DBAPIError):
        if code := sqlstate(err):  # PostgreSQL: class 22 data exception, 23 integrity violation
            return code[:2] in ("22", "23")
        return isinstance(err, DataError | IntegrityError)
    if isinstance(err, StatementError):  # while binding parameters
        return isinstance(err.orig, UnicodeError | ValueError | TypeError)
    # sqlite3's own, unwrapped (the writer's batch statements run on its connection directly).
    return isinstance(
        err, UnicodeError | ValueError | TypeError | sqlite3.DataError | sqlite3.IntegrityError
    )


def is_conflict(err: BaseException) -> bool:
    """Another transaction won a deadlock or a serialization conflict (PostgreSQL)."""
    return sqlstate(err) in _CONFLICTS


def describe(err: BaseException) -> str:
    """Why the database failed, for /healthz and logs: SQLite's messages are fixed texts (no
    data in them); other drivers' may name hosts or values, so only their error type is said."""
    if isinstance(err, WriterFailure):
        return err.description
    cause: BaseException = err.orig if isinstance(err, DBAPIError) and err.orig else err
    if isinstance(cause, sqlite3.Error):
        return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    # SQLAlchemy's asyncpg adapter wraps asyncpg's exception, whose class says what happened
    # (ReadOnlySQLTransactionError, DiskFullError, CannotConnectNowError…).
    name = type(cause.__cause__ or cause).__name__
    code = getattr(cause, "sqlstate", None)
    return f"{name} (SQLSTATE {code})" if code else name
