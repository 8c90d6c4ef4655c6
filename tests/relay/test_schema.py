"""The report contract: the shared example passes, every kind of bad input names its field."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
import json
from pathlib import Path
from typing import Any

import pytest

from relay.cli import main
from relay.schema import ReportError, validate_report

EXAMPLE = Path(__file__).parents[1] / "fixtures" / "report_v1.json"
NOW = datetime(2026, 7, 27, 19, 0, tzinfo=UTC)


@pytest.fixture
def report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def test_shared_example_is_valid(report: dict[str, Any]) -> None:
    validated = validate_report(report, now=lambda: NOW)
    assert validated["sent_at"] == datetime(2026, 7, 27, 18, 55, tzinfo=UTC)
    assert validated["devices"][1]["battery"] == 3
    assert validated["activity"][0]["at"].tzinfo is UTC


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
        ("devices.0.surprise", 1, "devices.0.surprise", "extra keys"),
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
        validate_report(report, now=lambda: NOW)
    assert caught.value.field == field
    assert message in caught.value.message


def test_small_clock_skew_is_tolerated(report: dict[str, Any]) -> None:
    report["sent_at"] = "2026-07-27T19:09:00+00:00"
    assert validate_report(report, now=lambda: NOW)["sent_at"].minute == 9


def test_not_an_object() -> None:
    with pytest.raises(ReportError, match="JSON object"):
        validate_report([])


def test_too_many_devices(report: dict[str, Any]) -> None:
    report["devices"] = [copy.deepcopy(report["devices"][0]) for _ in range(2001)]
    with pytest.raises(ReportError) as caught:
        validate_report(report, now=lambda: NOW)
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
