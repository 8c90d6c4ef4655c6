"""The report contract: the shared example passes, every kind of bad input names its field, and
no body whatever gets anything but a clear 400 (not JSON) or 422 (not a report)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import msgspec
import pytest

from relay.cli import main
from relay.schema import BodyError, Report, ReportError, Verdict, decode_report

EXAMPLE = Path(__file__).parents[1] / "fixtures" / "report_v1.json"
NOW = datetime(2026, 7, 27, 19, 0, tzinfo=UTC)


def validate_report(payload: object) -> Report:
    """``payload`` sent as JSON and decoded as the relay decodes a request body."""
    return decode_report(json.dumps(payload), now=NOW)


@pytest.fixture
def report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def test_shared_example_is_valid(report: dict[str, Any]) -> None:
    validated = validate_report(report)
    assert validated.sent_at == datetime(2026, 7, 27, 18, 55, tzinfo=UTC)
    assert validated.devices[1].battery == 3
    assert validated.activity[0].at.tzinfo is UTC
    assert str(validated.report_id) == report["report_id"]
    assert isinstance(validated.verdict, Verdict)
    assert validated.verdict.as_json() == report["verdict"]
    assert list(validated.verdict.as_json()) == list(Verdict.__struct_fields__)  # every field


def _set(report: dict[str, Any], path: str, value: object) -> None:
    *parents, last = path.split(".")
    node: Any = report
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("schema", 2, "schema", "unsupported schema version 2"),
        ("schema", "1", "schema", "whole number"),
        ("schema", True, "schema", "whole number"),
        ("report_id", "not-a-uuid", "report_id", "UUID"),
        ("home_id", "", "home_id", "characters"),
        ("home_id", "x" * 201, "home_id", "characters"),
        ("sent_at", "2026-07-28T19:00:00+00:00", "sent_at", "future"),
        ("sent_at", "2026-07-27T18:55:00", "sent_at", "UTC offset"),
        ("sent_at", "yesterday", "sent_at", "ISO 8601"),
        ("sent_at", 1234, "sent_at", "ISO 8601"),
        ("devices.0.battery", 300, "devices.0.battery", ""),
        ("devices.1.battery_state", "empty", "devices.1.battery_state", ""),
        ("devices.0.connectivity", "gone", "devices.0.connectivity", ""),
        ("devices.0.name", 5, "devices.0.name", "string"),
        ("devices.0.surprise", 1, "devices.0.surprise", "unknown field"),
        ("activity.0.at", "2030-01-01T00:00:00+00:00", "activity.0.at", ""),
        ("activity.0.sensor_id", _DELETE, "activity.0.sensor_id", "required"),
        ("bridge.reachable", "yes", "bridge.reachable", "true or false"),
        ("counters.polls", -1, "counters.polls", "whole number"),
        ("counters.polls", 2**31, "counters.polls", "whole number"),
        ("devices", {}, "devices", ""),
    ],
)
def test_bad_reports_name_the_field(
    report: dict[str, Any], path: str, value: object, field: str, message: str
) -> None:
    _set(report, path, value)
    with pytest.raises(ReportError) as caught:
        validate_report(report)
    assert caught.value.field == field
    assert message in caught.value.message


def test_small_clock_skew_is_tolerated(report: dict[str, Any]) -> None:
    report["sent_at"] = "2026-07-27T19:09:00+00:00"
    assert validate_report(report).sent_at.minute == 9


def test_every_moment_comes_out_in_utc(report: dict[str, Any]) -> None:
    report["sent_at"] = "2026-07-27T20:55:00+02:00"
    report["activity"][0]["at"] = "2026-07-27T13:33:10-05:00"
    report["verdict"]["since"] = "2026-07-28T00:03:10+05:30"
    report["bridge"]["offline_since"] = "2026-07-27T18:00:00Z"
    validated = validate_report(report)
    assert validated.sent_at == datetime(2026, 7, 27, 18, 55, tzinfo=UTC)
    assert validated.sent_at.tzinfo is UTC
    assert validated.activity[0].at == datetime(2026, 7, 27, 18, 33, 10, tzinfo=UTC)
    assert validated.activity[0].at.tzinfo is UTC
    assert isinstance(validated.verdict, Verdict)
    assert validated.verdict.since is not None
    assert validated.verdict.since.tzinfo is UTC
    assert validated.bridge.offline_since == datetime(2026, 7, 27, 18, tzinfo=UTC)


def test_reports_of_every_deployed_shape_are_taken(report: dict[str, Any]) -> None:
    """Integrations older than the detector send no verdict; older still, no time zone or
    offline_since on the bridge."""
    del report["verdict"], report["bridge"]["time_zone"], report["bridge"]["offline_since"]
    validated = validate_report(report)
    assert validated.verdict is msgspec.UNSET
    assert (validated.bridge.time_zone, validated.bridge.offline_since) == (None, None)


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("devices.0.name", "Hall\ud800", "devices.0.name", "lone surrogate"),
        ("devices.0.name", "\ud800", "devices.0.name", "lone surrogate"),
        ("bridge.reachable", "\ud800", "bridge.reachable", "lone surrogate"),
        ("bridge.name", "\udfffBridge", "bridge.name", "lone surrogate"),
        ("devices.0.room", "Kitchen\u0000", "devices.0.room", "NUL"),
        ("home_id", " \t\u3000 ", "home_id", "not blank"),
        ("verdict", None, "verdict", "an object"),
        ("verdict.state", "asleep", "verdict.state", "one of active, away"),
        ("verdict.confidence", 1.5, "verdict.confidence", "a number from 0 to 1"),
        ("verdict.limit_minutes", 100_001, "verdict.limit_minutes", "from 0 to 100000 or null"),
        ("counters.polls", 2**70, "counters.polls", "2^31-1"),
        ("counters.polls", 1.0, "counters", "whole number, got a number"),
        ("activity.0.at", "2026-07-27T18:33:10+05:61", "activity.0.at", "RFC 3339"),
        ("report_id", "6f1c2a4e-8a4b-4f0e-9d7e", "report_id", "UUID"),
        ("bridge", [], "bridge", "an object, got a list"),
        ("bridge.extra", 1, "bridge.extra", "unknown field"),
    ],
)
def test_more_bad_reports_name_the_field(
    report: dict[str, Any], path: str, value: object, field: str, message: str
) -> None:
    _set(report, path, value)  # json.dumps writes a lone surrogate as an escape (\ud800)
    with pytest.raises(ReportError) as caught:
        validate_report(report)
    assert caught.value.field == field
    assert message in caught.value.message


def test_a_key_with_a_lone_surrogate_is_named_by_its_parent(report: dict[str, Any]) -> None:
    report["counters"]["polls\udfff"] = 1
    with pytest.raises(ReportError) as caught:
        validate_report(report)
    assert (caught.value.field, caught.value.message) == (
        "counters",
        "contains a lone surrogate (not UTF-8 text)",
    )


def test_a_later_schema_version_is_named_before_its_fields(report: dict[str, Any]) -> None:
    report["schema"] = 2
    report["rooms"] = []  # a field of that later version
    del report["counters"]
    with pytest.raises(ReportError) as caught:
        validate_report(report)
    assert (caught.value.field, caught.value.message) == (
        "schema",
        "unsupported schema version 2 (this relay speaks 1)",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "not JSON"),
        (b'{"schema": 1, "x": [1, 1', "not JSON"),  # refused at "x", but not JSON at all
        (b"[" * 100_000, "nested too deeply"),
        (b'{"counters": ' + b"[" * 100_000, "nested too deeply"),
        (b'{"schema": 1, "devices": [NaN]}', "not JSON"),
        (b'{"home_id": "\\ud800", }', "not JSON"),  # a surrogate, and broken after it
        (b'{"home_id": "\\ud83c\\udfe0", "x": NaN}', "not JSON"),  # a pair is no surrogate
        # A lone surrogate first (msgspec stops there), then nesting only the standard
        # library's parser reaches.
        (b'["\\ud800", ' + b"[" * 100_000 + b"]" * 100_000 + b"]", "nested too deeply"),
        (b'{"schema": 1, "home_id": "\xff"}', "UTF-8"),
    ],
)
def test_bodies_that_are_not_json(body: bytes, message: str) -> None:
    with pytest.raises(BodyError, match=message):
        decode_report(body, now=NOW)


def test_not_an_object() -> None:
    with pytest.raises(ReportError, match="JSON object"):
        validate_report([])


def test_too_many_devices(report: dict[str, Any]) -> None:
    report["devices"] = [copy.deepcopy(report["devices"][0]) for _ in range(2001)]
    with pytest.raises(ReportError) as caught:
        validate_report(report)
    assert caught.value.field == "devices"


def test_cli_validate_report(
    tmp_path: Path, report: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.json"
    report["sent_at"] = datetime.now(UTC).isoformat()
    good.write_text(json.dumps(report))
    assert main(["validate-report", str(good)]) == 0
    assert "ok (home aabbccddeeffggh, 2 devices, 1 activity events)" in capsys.readouterr().out

    bad = tmp_path / "bad.json"
    report["devices"][0]["battery"] = 300
    bad.write_text(json.dumps(report))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["validate-report", str(bad), str(broken), str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err
    assert "bad.json: invalid report: devices.0.battery" in err
    assert "broken.json: not JSON" in err
    assert "missing.json: cannot read" in err


# -- any mutation of a report: a Report, or a ReportError naming a field of the body ------------

ODD_VALUES: list[object] = [
    None,
    True,
    0,
    -1,
    101,
    2**31,
    2**70,
    1.5,
    "",
    " ",
    "x" * 201,
    "x",
    "low",
    "connected",
    "bogus",
    "\ud800",
    "a\x00",
    [],
    {},
    {"a": 1},
    "2026-07-27T18:55:00+00:00",
    "2026-07-27T18:55:00",
    "2026-07-27T23:55:00+00:00",
    "1999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00+01:00",
    "yesterday",
    "6f1c2a4e8a4b4f0e9d7e3b2a1c0d9e8f",
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


PATHS = _paths(json.loads(EXAMPLE.read_text()))


@st.composite
def mutated_reports(draw: st.DrawFn) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(EXAMPLE.read_text())
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


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutated_reports())
def test_any_mutation_is_a_report_or_names_its_field(report: dict[str, Any]) -> None:
    body = json.dumps(report)
    try:
        decoded = decode_report(body, now=NOW)
    except ReportError as err:
        refused = err
    else:
        # Taken: what the relay stores reads back the same.
        assert decode_report(msgspec.json.encode(decoded), now=NOW) == decoded
        return
    # The field is where the body has (or lacks) something: its parent exists.
    node: Any = report
    for part in refused.field.split(".")[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    assert refused.message


def _text_paths(report: dict[str, Any]) -> list[str]:
    """Every Text field of ``report``, found through the model (``relay.schema``)."""
    from relay.schema import _text_fields

    return [path for path, _ in _text_fields(validate_report(report))]


def test_every_text_is_checked_for_blanks_and_nul(report: dict[str, Any]) -> None:
    """The hand-gathered texts (the fast check) are exactly the model's Text fields, and a
    blank or NUL-carrying value in any of them is refused naming it."""
    from relay.schema import _text_fields, _texts

    report["devices"][0]["room"] = "Hall"
    report["activity"][0]["room"] = "Hall"
    report["bridge"]["time_zone"] = "Europe/Berlin"
    validated = validate_report(report)
    assert sorted(_texts(validated)) == sorted(text for _, text in _text_fields(validated))
    paths = [path for path in _text_paths(report) if path != "counters"]
    assert {"home_id", "bridge.name", "devices.1.kind", "activity.0.sensor_id"} <= set(paths)
    for path in paths:
        for bad in ("", " \u3000\t", "Hall\x00"):
            broken = copy.deepcopy(report)
            _set(broken, path, bad)
            with pytest.raises(ReportError) as caught:
                validate_report(broken)
            assert caught.value.field == path
            assert "not blank, without NUL" in caught.value.message
    for bad in ("", " ", "polls\x00"):
        broken = copy.deepcopy(report)
        broken["counters"][bad] = 1
        with pytest.raises(ReportError) as caught:
            validate_report(broken)
        assert caught.value.field == "counters"
