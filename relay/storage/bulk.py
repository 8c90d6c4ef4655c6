"""Statements compiled once and run on the database driver's own cursor, rows given as tuples:
the ingest writer's bulk writes (relay/ingest.py), where SQLAlchemy's per-row parameter handling
was the largest share of the time."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import itertools
from typing import Any, Literal

from sqlalchemy import ARRAY, String, bindparam, column, func, select, values
from sqlalchemy.engine import Connection, Dialect

from .models import insert_or_skip

#: A value's place in the rows given (row, field; ``row`` -1: a literal of the statement) and
#: the driver's conversion of it.
type _Plan = list[tuple[int, int, Any, Callable[[Any], Any] | None]]


def _plan(compiled: Any, where: dict[str, tuple[int, int]], dialect: Dialect) -> _Plan:
    """Where each positional parameter of ``compiled`` takes its value from."""
    assert compiled.positiontup is not None  # both drivers take positional parameters
    plan: _Plan = []
    for name in compiled.positiontup:
        parameter = compiled.binds[name]
        row, field = where.get(name, (-1, -1))  # not a row's: a literal ('connected')
        convert = parameter.type.dialect_impl(dialect).bind_processor(dialect)
        plan.append((row, field, parameter.value, convert))
    return plan


def _bind(plan: _Plan, rows: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The parameters of a statement for ``rows``, as the driver takes them."""
    values = []
    for row, field, literal, convert in plan:
        value = literal if row < 0 else rows[row][field]
        values.append(value if convert is None else convert(value))
    return tuple(values)


def _same(convert: Callable[[Any], Any] | None) -> object:
    """What makes two bind processors the same conversion: their code."""
    return getattr(convert, "__code__", convert)


@dataclass(frozen=True, slots=True)
class _RowMajor:
    """A plan that takes every row's fields in order, row after row, then the statement's
    literals (a multi-row INSERT on SQLite): bound with one conversion per field looked up
    once, not a plan entry per value, and the literals converted once."""

    converters: tuple[Callable[[Any], Any] | None, ...]
    literals: tuple[Any, ...]

    @classmethod
    def of(cls, plan: _Plan, rows: int, width: int) -> _RowMajor | None:
        """The row-major form of ``plan``, or None when its parameters come in another order."""
        cells = rows * width
        if len(plan) < cells or any(row >= 0 for row, _, _, _ in plan[cells:]):
            return None
        if any(plan[n][:2] != (n // width, n % width) for n in range(cells)):
            return None
        converters = tuple(convert for _, _, _, convert in plan[:width])
        # Each parameter has a processor of its own, made by its type: the same function
        # (code) for every row of a field, as every row's parameters are typed alike.
        if any(_same(plan[n][3]) != _same(converters[n % width]) for n in range(cells)):
            return None
        return cls(
            converters,
            tuple(v if c is None else c(v) for _, _, v, c in plan[cells:]),
        )

    def bind(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        """The parameters for ``rows``."""
        converters = self.converters
        if any(len(row) != len(converters) for row in rows):
            # A bug of ours, not the report's data (a ValueError would be answered 422).
            raise RuntimeError(f"rows of {len(converters)} fields expected")
        # Flattened in C, then each converted field's column converted in place (a slice of
        # every width-th value): no Python step per value but the conversion itself.
        values = list(itertools.chain.from_iterable(rows))
        width = len(converters)
        for index, convert in enumerate(converters):
            if convert is not None:
                values[index::width] = map(convert, values[index::width])
        values += self.literals
        return values


class DriverStatement:
    """A statement compiled ONCE to the driver's own SQL and run on the driver's cursor
    (``exec_driver_sql``; on sqlite3, the driver's connection itself) with rows given as
    tuples in ``fields`` order.

    The dialect's own bind processors convert the values (the stored text is what SQLAlchemy
    would have written); nothing else runs per row. Through ``Connection.execute``, SQLAlchemy's
    per-row parameter handling (a dict per row, ``construct_params``, processors looked up per
    parameter) was the largest share of the writer's time (py-spy, issue 16).

    ``build(n)`` is the statement for ``n`` rows. ``shape`` says how rows are sent:
    ``"rows"``: an INSERT takes them in ONE statement (as many VALUES), compiled once per power
    of two (a batch's rows go as a few of those); ``"many"``: an UPDATE, built for one row
    (``n`` is 1), goes as an executemany; ``"columns"`` (PostgreSQL): an INSERT built with
    ``n`` = 0 (:func:`bulk_insert`) takes one array per field, any number of rows in ONE
    statement and one round trip (as VALUES of a few sizes, the reports of a batch of 25 were
    three round trips, each waited for). In SQLite's executemany every row is a step of its
    own that lets go of the GIL and must wait to take it back from the busy event loop: one
    statement for all rows waits once.
    """

    #: Rows per statement at most (SQLite and asyncpg allow 32,766 parameters; a device row
    #: has 11).
    MAX_ROWS = 256

    def __init__(
        self,
        build: Callable[[int], Any],
        fields: Sequence[str],
        dialect: Dialect,
        shape: Literal["rows", "many", "columns"],
    ) -> None:
        self._build = build
        self._fields = tuple(fields)
        self._dialect = dialect
        self._shape = shape
        self._compiled: dict[int, tuple[str, _Plan, _RowMajor | None]] = {}

    def _sized(self, rows: int) -> tuple[str, _Plan, _RowMajor | None]:
        """The SQL and parameter plan for ``rows`` rows (compiled on first use), and the
        plan's row-major form when it has one."""
        if (known := self._compiled.get(rows)) is None:
            compiled = self._build(rows).compile(dialect=self._dialect)
            where = {
                field if self._shape != "rows" else _param(field, row): (row, index)
                for row in range(max(rows, 1))
                for index, field in enumerate(self._fields)
            }
            plan = _plan(compiled, where, self._dialect)
            row_major = (
                _RowMajor.of(plan, rows, len(self._fields)) if self._shape == "rows" else None
            )
            known = self._compiled[rows] = (compiled.string, plan, row_major)
        return known

    def execute(
        self, connection: Connection, rows: Sequence[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        """Store ``rows``; what the statement returns (RETURNING), as plain tuples."""
        if self._shape == "many":
            sql, plan, _ = self._sized(1)
            if rows:
                connection.exec_driver_sql(sql, [_bind(plan, (row,)) for row in rows])
            return []
        if self._shape == "columns":
            if not rows:
                return []
            sql, plan, _ = self._sized(0)
            columns = tuple(list(column) for column in zip(*rows, strict=True))
            result = connection.exec_driver_sql(sql, _bind(plan, (columns,)))
            return list(map(tuple, result)) if result.returns_rows else []
        # sqlite3 (the writer's own connection) is called directly: SQLAlchemy's execution
        # context and result around each statement cost more than the statement's binding.
        # Its errors then come unwrapped (relay.ingest reads both forms).
        raw = (
            connection.connection.driver_connection if self._dialect.driver == "pysqlite" else None
        )
        returned: list[tuple[Any, ...]] = []
        start = 0
        while start < len(rows):
            size = min(self.MAX_ROWS, 1 << ((len(rows) - start).bit_length() - 1))
            sql, plan, row_major = self._sized(size)
            chunk = rows[start : start + size]
            parameters = _bind(plan, chunk) if row_major is None else row_major.bind(chunk)
            if raw is not None:
                returned += raw.execute(sql, parameters).fetchall()
            else:
                result = connection.exec_driver_sql(sql, tuple(parameters))
                if result.returns_rows:
                    returned += map(tuple, result)
            start += size
        return returned


def _param(field: str, row: int) -> str:
    """The name of a row's parameter in a statement built for many rows."""
    return f"{field}__{row}"


def row_values(table: Any, fields: Sequence[str], rows: int) -> list[dict[str, Any]]:
    """``rows`` rows of parameters for ``table``'s ``fields`` (see :func:`_param`)."""
    return [
        {field: bindparam(_param(field, row), type_=table.c[field].type) for field in fields}
        for row in range(rows)
    ]


def bulk_insert(dialect: str, table: Any, fields: Sequence[str], rows: int) -> Any:
    """``INSERT`` into ``table``'s ``fields`` of ``rows`` rows of VALUES; with ``rows`` 0
    (PostgreSQL), of any number of rows given as one array per field
    (``SELECT unnest($1), unnest($2), …``: the arrays are read side by side, in order)."""
    insert = insert_or_skip(dialect, table)
    if rows:
        return insert.values(row_values(table, fields, rows))
    arrays = [
        func.unnest(bindparam(field, type_=_array_of(table.c[field].type))) for field in fields
    ]
    return insert.from_select(list(fields), select(*arrays))


def _array_of(kind: Any) -> Any:
    """An array of ``kind``, a text type without its length: PostgreSQL's cast to
    ``VARCHAR(n)[]`` cuts a longer text silently (two device ids would become one row), where
    the INSERT of a plain text refuses it."""
    if isinstance(kind, String) and kind.length is not None:
        kind = kind.copy()
        kind.length = None
    return ARRAY(kind)


def values_cte(name: str, types: Mapping[str, Any], rows: int) -> Any:
    """``WITH name(field, …) AS (VALUES (…), …)``: ``rows`` rows of parameters, one typed
    column per field (parameters named as :func:`row_values` names them), to join into an
    ``UPDATE … FROM``."""
    return (
        values(*(column(field, kind) for field, kind in types.items()), name=name)
        .data(
            [
                tuple(bindparam(_param(field, row), type_=kind) for field, kind in types.items())
                for row in range(rows)
            ]
        )
        .cte(name)
    )
