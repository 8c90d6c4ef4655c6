"""Any listing a bridge (or something posing as one) sends -> parse -> build_report -> the relay
accepts the report. One odd name must never silence a home on the relay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
import unicodedata
import uuid

from homeassistant.helpers.json import json_bytes
from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.hpoll.activity.report import MAX_TEXT, build_report
from custom_components.hpoll.activity.tracker import ActivityTracker
from custom_components.hpoll.hue import parse_snapshot
from relay.schema import decode_report

NOW = datetime(2026, 7, 27, 19, 0, tzinfo=UTC)

#: Everything Unicode has, lone surrogates and controls included, and the usual suspects.
hostile_text = st.text(
    alphabet=st.characters(exclude_categories=()), max_size=300
) | st.sampled_from(
    [
        "",
        " ",
        "\ud800",
        "a\udfffb",
        "\x00",
        "\n\t",
        "\u202egnp.exe",
        "\ufeff",
        "x" * 5000,
        "🏠" * 80,
    ]
)
resource_id = st.uuids().map(str) | hostile_text
times = st.datetimes(
    min_value=datetime(1969, 1, 1), max_value=datetime(2026, 7, 28), timezones=st.just(UTC)
).map(lambda when: when.isoformat())


@st.composite
def listings(draw: st.DrawFn) -> list[dict[str, Any]]:
    room_id = str(uuid.uuid4())
    data: list[dict[str, Any]] = [
        {
            "id": str(uuid.uuid4()),
            "type": "bridge",
            "bridge_id": draw(hostile_text | st.just("001788fffe000000")),
            "time_zone": {"time_zone": draw(hostile_text | st.just("Europe/Berlin"))},
        },
        {"id": room_id, "type": "room", "metadata": {"name": draw(hostile_text)}, "children": []},
    ]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        device_id = draw(resource_id)
        owner = {"rid": device_id, "rtype": "device"}
        data[1]["children"].append(owner)
        data += [
            {
                "id": device_id,
                "type": "device",
                "metadata": {"name": draw(hostile_text)},
                "product_data": {"product_name": draw(hostile_text)},
            },
            {
                "id": draw(resource_id),
                "type": "device_power",
                "owner": owner,
                "power_state": {
                    "battery_level": draw(st.integers(-5, 105)),
                    "battery_state": "low",
                },
            },
            {
                "id": draw(resource_id),
                "type": draw(st.sampled_from(["zigbee_connectivity", "zgp_connectivity"])),
                "owner": owner,
                "status": "connected",
            },
            {
                "id": draw(resource_id),
                "type": "motion",
                "owner": owner,
                "motion": {"motion_report": {"motion": True, "changed": draw(times)}},
            },
        ]
    return data


def _all_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_all_strings(v)]]
    if isinstance(value, list):
        return [s for item in value for s in _all_strings(item)]
    return [value] if isinstance(value, str) else []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(listing=listings(), bridge_name=hostile_text, counter=hostile_text)
def test_any_parsed_snapshot_makes_a_report_the_relay_accepts(
    listing: list[dict[str, Any]], bridge_name: str, counter: str
) -> None:
    snapshot = parse_snapshot({"errors": [], "data": listing})
    tracker = ActivityTracker(started_at=NOW - timedelta(days=30))
    report = build_report(
        snapshot,
        home_id="h_1",
        bridge_name=bridge_name,
        now=NOW,
        activity=tracker.update(snapshot, NOW),
        counters={"polls": 1, counter: 2},
    )
    # The body the pusher sends, decoded into the relay's typed contract as the relay does.
    decode_report(json_bytes(report), now=NOW)
    # And more than today's validator asks (it is getting stricter): every text is valid
    # Unicode on one line, without controls, non-blank and within the relay's limit.
    for text in _all_strings(report):
        text.encode("utf-8")  # no lone surrogate
        assert text.strip(), report
        assert len(text) <= MAX_TEXT
        assert not any(unicodedata.category(char) in ("Cc", "Cs") for char in text), text


def test_times_from_a_wrong_bridge_clock_do_not_get_the_report_refused() -> None:
    """A bridge whose clock is wrong can report times before 2000, which the relay refuses (and
    with them the whole report): such times go out as unknown. (Found by the property test.)"""
    owner = {"rid": str(uuid.uuid4()), "rtype": "device"}
    unset = "1999-01-01T00:00:00+00:00"
    listing = [
        {"id": owner["rid"], "type": "device", "metadata": {"name": "Hall"}},
        {
            "id": str(uuid.uuid4()),
            "type": "motion",
            "owner": owner,
            "motion": {"motion_report": {"motion": True, "changed": unset}},
        },
    ]
    snapshot = parse_snapshot({"errors": [], "data": listing})
    tracker = ActivityTracker(started_at=datetime(1969, 1, 1, tzinfo=UTC))
    activity = tracker.update(snapshot, NOW)
    assert [event.at.year for event in activity] == [1999]
    verdict = {
        "state": "active",
        "since": unset,
        "reason": None,
        "limit_minutes": 150,
        "learning": True,
        "confidence": 0.0,
        "away": False,
        "low_activity_today": False,
        "last_activity": unset,
    }
    report = build_report(
        snapshot, home_id="h_1", bridge_name="Home", now=NOW, activity=activity, verdict=verdict
    )
    assert report["devices"][0]["last_seen"] is None
    assert report["activity"] == []
    assert (report["verdict"]["since"], report["verdict"]["last_activity"]) == (None, None)
    decode_report(json_bytes(report), now=NOW)
