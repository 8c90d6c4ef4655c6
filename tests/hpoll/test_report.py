"""Reports built from the real fixture pass the relay's own validator and match the example."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
from typing import Any

from homeassistant.helpers.json import json_bytes

from custom_components.hpoll.activity.detector import InactivityDetector
from custom_components.hpoll.activity.report import build_report, device_kind
from custom_components.hpoll.activity.tracker import ActivityEvent
from custom_components.hpoll.hue import parse_snapshot
from relay.schema import Verdict, decode_report

EXAMPLE = Path(__file__).parents[1] / "fixtures" / "report_v1.json"
NOW = datetime(2026, 7, 27, 19, 0, tzinfo=UTC)


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return None


def test_report_from_fixture_passes_the_relay_validator(envelope: dict[str, Any]) -> None:
    snapshot = parse_snapshot(envelope)
    report = build_report(
        snapshot,
        home_id="h_1",
        bridge_name="Hue Bridge",
        now=NOW,
        activity=[ActivityEvent("s1", "Room 1", NOW - timedelta(minutes=3))],
        counters={"polls": 3},
        verdict=InactivityDetector(UTC).verdict(NOW).as_report(),
    )
    validated = decode_report(json_bytes(report), now=NOW)  # the body the pusher sends
    assert validated.home_id == "h_1"
    assert isinstance(validated.verdict, Verdict)
    assert (validated.verdict.state, validated.verdict.reason) == (
        "unknown",
        "no_activity",
    )
    by_id = {d["id"]: d for d in report["devices"]}
    assert by_id["fc8a3caf-95aa-9c24-0eb2-22293a7f2618"]["battery_state"] == "low"
    assert by_id["7bd86197-ef7c-7625-3170-1b6de1502441"]["room"] == "Room 1"
    assert by_id["7bd86197-ef7c-7625-3170-1b6de1502441"]["kind"] == "motion_sensor"
    assert any(d["connectivity"] == "connectivity_issue" for d in report["devices"])
    assert report["bridge"]["time_zone"] == "Europe/Amsterdam"


def test_report_has_the_shape_of_the_shared_example(envelope: dict[str, Any]) -> None:
    example = json.loads(EXAMPLE.read_text())
    report = build_report(
        parse_snapshot(envelope),
        home_id="h",
        bridge_name="B",
        now=NOW,
        activity=[ActivityEvent("s1", None, NOW)],
        counters={"polls": 1},
        verdict=InactivityDetector(UTC).verdict(NOW).as_report(),
    )
    assert _shape(report) | {"counters": None} == _shape(example) | {"counters": None}


def test_device_kinds(envelope: dict[str, Any]) -> None:
    snapshot = parse_snapshot(envelope)
    kinds = {device_kind(d) for d in snapshot.devices.values()}
    assert {"motion_sensor", "camera", "contact_sensor", "switch", "sensor", "device"} <= kinds
