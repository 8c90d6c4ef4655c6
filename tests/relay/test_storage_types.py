"""UTCDateTime's one-step SQLite binding writes exactly what SQLAlchemy's own two steps write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, strategies as st
import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite

from relay.storage.models import UTCDateTime

SQLITE = sqlite.dialect()
FAST = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
SQLITE_DATETIME = DateTime(timezone=True).dialect_impl(SQLITE).bind_processor(SQLITE)

offsets = st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets)
)
def test_sqlite_text_is_sqlalchemys(value: datetime) -> None:
    expected = SQLITE_DATETIME(UTCDateTime().process_bind_param(value, SQLITE))
    assert FAST(value) == expected
    assert FAST(value.astimezone(UTC)) == expected


def test_none_and_naive() -> None:
    assert FAST(None) is None
    with pytest.raises(ValueError, match="naive"):
        FAST(datetime(2026, 7, 27, 18, 55))


def test_other_databases_keep_sqlalchemys_processing() -> None:
    dialect = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    moment = datetime(2026, 7, 27, 20, 55, tzinfo=timezone(timedelta(hours=2)))
    assert process is not None
    result = process(moment)
    assert (result, result.tzinfo) == (moment, UTC)
