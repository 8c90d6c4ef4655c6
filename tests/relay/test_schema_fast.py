"""The fast path of report validation agrees with the schema: whatever it accepts, the schema
accepts with the same result; whatever it doubts, the schema decides (and names the field)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest
import voluptuous as vol

from relay.schema import build_schema, fast_validate, validate_report
from tests.relay.conftest import load_example

NOW = datetime(2026, 7, 27, 19, 0, tzinfo=UTC)

ODD_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    100,
    101,
    300,
    2**31,
    1.5,
    "",
    " ",
    "x" * 201,
    "x",
    "normal",
    "low",
    "critical",
    "connected",
    "pending_discovery",
    "bogus",
    [],
    {},
    {"a": 1},
    "2026-07-27T18:55:00+00:00",
    "2026-07-27T18:55:00",
    "2026-07-27T23:55:00+00:00",
    "2026-07-27T19:05:00+02:00",
    "yesterday",
    "6f1c2a4e8a4b4f0e9d7e3b2a1c0d9e8f",
    "{6F1C2A4E-8A4B-4F0E-9D7E-3B2A1C0D9E8F}",
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _example() -> dict[str, Any]:
    report = load_example()
    report["devices"].append(copy.deepcopy(report["devices"][0]) | {"room": "Hall"})
    report["counters"]["dropped"] = 0
    return report


PATHS = _paths(_example())


@st.composite
def mutated_reports(draw: st.DrawFn) -> dict[str, Any]:
    report = _example()
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = report
        try:
            for step in path[:-1]:
                parent = parent[step]
            action = draw(st.sampled_from(("set", "set", "set", "delete", "extra")))
            if action == "set":
                parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent["unexpected"] = 1
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the way there
    return report


def _schema(report: dict[str, Any]) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = build_schema(lambda: NOW)(report)
    except vol.Invalid:
        return None
    return result


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutated_reports())
def test_fast_path_agrees_with_the_schema(report: dict[str, Any]) -> None:
    fast = fast_validate(copy.deepcopy(report), NOW)
    # Same verdict and the same result; the fast path is allowed to doubt, but here it never
    # has to (these are plain JSON values), so it must not.
    assert fast == _schema(copy.deepcopy(report))


def test_fast_path_takes_the_ordinary_report() -> None:
    report = _example()
    assert fast_validate(copy.deepcopy(report), NOW) == _schema(report)
    assert fast_validate(copy.deepcopy(report), NOW) is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schema": 2}, "schema"),
        ({"home_id": ""}, "home_id"),
        ({"sent_at": "2026-07-28T19:00:00+00:00"}, "sent_at"),
        ({"counters": {"polls": -1}}, "counters.polls"),
    ],
)
def test_errors_still_come_from_the_schema(change: dict[str, Any], field: str) -> None:
    from relay.schema import ReportError

    with pytest.raises(ReportError) as caught:
        validate_report(_example() | change, now=lambda: NOW)
    assert caught.value.field == field
