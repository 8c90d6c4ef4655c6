"""The relay queue: order, its bound, merging that keeps activity, and counted losses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
from typing import Any

from homeassistant.helpers.json import json_bytes
import pytest

from custom_components.hpoll.activity.push_queue import ReportQueue
from custom_components.hpoll.activity.report import build_report
from custom_components.hpoll.activity.tracker import ActivityEvent
from custom_components.hpoll.hue import parse_snapshot
from relay.schema import decode_report

NOW = datetime(2026, 7, 27, 19, 0, tzinfo=UTC)


def report(n: int, events: int = 1, envelope: dict[str, Any] | None = None) -> dict[str, Any]:
    """Report number ``n`` (sent n minutes after NOW - 1 h) with ``events`` activity events."""
    at = NOW - timedelta(hours=1) + timedelta(minutes=n)
    if envelope is None:
        return {
            "report_id": f"r{n}",
            "sent_at": at.isoformat(),
            "devices": [{"n": n}],
            "activity": [{"at": f"{n}.{i}"} for i in range(events)],
        }
    return build_report(
        parse_snapshot(envelope),
        home_id="h_1",
        bridge_name="Hue Bridge",
        now=at,
        activity=[
            ActivityEvent(f"s{i}", "Room 1", at - timedelta(seconds=i)) for i in range(events)
        ],
    )


def ids(queue: ReportQueue) -> list[str]:
    return [item.report["report_id"] for item in queue]


def test_first_in_first_out() -> None:
    queue = ReportQueue()
    for n in range(3):
        queue.append(report(n))
    assert ids(queue) == ["r0", "r1", "r2"]
    assert queue.oldest_sent_at == report(0)["sent_at"]
    head = queue.head
    assert head is not None
    queue.remove(head, delivered=True)
    assert ids(queue) == ["r1", "r2"]
    assert queue.counters["reports_delivered"] == 1


def test_over_the_bound_the_oldest_merge_and_keep_their_activity(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = ReportQueue(max_reports=3)
    for n in range(5):
        queue.append(report(n, events=2))
    assert len(queue) == 3
    # r0, r1 and r2 became one report: r2's identity and devices, everybody's activity.
    assert ids(queue) == ["r2", "r3", "r4"]
    merged = next(iter(queue)).report
    assert merged["devices"] == [{"n": 2}]
    assert [e["at"] for e in merged["activity"]] == ["0.0", "0.1", "1.0", "1.1", "2.0", "2.1"]
    assert queue.counters["reports_compacted"] == 2
    assert queue.counters["activity_dropped"] == 0
    assert caplog.text.count("Relay queue full") == 1  # said once, counted always


def test_a_report_that_was_attempted_is_never_merged() -> None:
    queue = ReportQueue(max_reports=3)
    queue.append(report(0))
    head = queue.head
    assert head is not None
    head.attempts = 1  # in flight, or its answer was lost: the relay may have it under r0
    for n in range(1, 5):
        queue.append(report(n))
    assert ids(queue) == ["r0", "r3", "r4"]
    assert next(iter(queue)).report["activity"] == [{"at": "0.0"}]


def test_activity_beyond_the_cap_drops_the_oldest_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = ReportQueue(max_reports=3, max_activity=5)
    for n in range(4):
        queue.append(report(n, events=3))
    merged = next(iter(queue)).report
    assert [e["at"] for e in merged["activity"]] == ["0.1", "0.2", "1.0", "1.1", "1.2"]
    assert queue.counters["activity_dropped"] == 1
    assert "dropped the 1 oldest activity events" in caplog.text


def test_merged_reports_still_pass_the_relay_validator(envelope: dict[str, Any]) -> None:
    queue = ReportQueue(max_reports=3)
    for n in range(6):
        queue.append(report(n, events=4, envelope=envelope))
    merged = next(iter(queue)).report
    assert len(merged["activity"]) == 16
    decode_report(json_bytes(merged), now=NOW)  # the body the pusher sends


def test_export_and_restore() -> None:
    queue = ReportQueue()
    queue.append(report(0))
    queue.append(report(1))
    head = queue.head
    assert head is not None
    head.attempts = 2
    queue.counters["reports_rejected"] = 3
    restored = ReportQueue.restore(json.loads(json.dumps(queue.export())))
    assert ids(restored) == ["r0", "r1"]
    assert restored.head is not None
    assert restored.head.attempts == 2
    assert restored.counters == queue.counters


@pytest.mark.parametrize(
    "stored",
    [
        None,
        [],
        "junk",
        {"reports": [1, {"report": "x"}, {}]},
        {"counters": {"reports_rejected": "2"}},
    ],
)
def test_restore_survives_garbage(stored: Any) -> None:
    restored = ReportQueue.restore(stored)
    assert len(restored) == 0
    assert restored.counters["reports_rejected"] == 0


def test_bound_must_leave_room_to_merge() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        ReportQueue(max_reports=2)
