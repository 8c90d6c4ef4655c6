"""The report contract (integration -> relay), schema version 1: the ONE place it is defined.

A report is what one home says about itself at one moment: its bridge, its devices' battery and
connectivity, the activity seen since the last report, and counters. Validation is strict: an
unknown schema version, a wrong type, an absurd value (battery 300 %, a timestamp from the
future) or an unknown key is refused with a message naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import functools
from typing import Any, Final
import uuid

import voluptuous as vol

SCHEMA_VERSION: Final = 1
#: Clocks drift; a home's clock may run a little ahead of ours, never hours ahead.
MAX_CLOCK_SKEW: Final = timedelta(minutes=10)
MAX_DEVICES: Final = 2_000
MAX_ACTIVITY: Final = 20_000
MAX_TEXT: Final = 200
#: The accepted time window: from here to now + MAX_CLOCK_SKEW. Earlier is a clock that was
#: never set (a bridge's 1970), not a moment hpoll can say anything about.
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)

BATTERY_STATES: Final = ("normal", "low", "critical")
CONNECTIVITY: Final = (
    "connected",
    "disconnected",
    "connectivity_issue",
    "unidirectional_incoming",
    "pending_discovery",
)
#: The inactivity verdict (custom_components/hpoll/activity/detector.py; a test keeps the two
#: sides equal): its states, and why it is "inactive" or "unknown".
VERDICT_STATES: Final = ("active", "resting", "away", "inactive", "unknown")
VERDICT_REASONS: Final = (
    "unusual_gap",
    "not_up",
    "one_sensor",
    "safety_net",
    "no_activity",
    "unreachable",
)
MAX_LIMIT_MINUTES: Final = 100_000


def storable(value: str) -> bool:
    """Whether every database can hold ``value``: no NUL (PostgreSQL refuses it) and no lone
    surrogate (not UTF-8, SQLite refuses it)."""
    if value.isascii():
        return "\x00" not in value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("expected a string")
    if not value.strip() or len(value) > MAX_TEXT:
        raise vol.Invalid(f"expected 1 to {MAX_TEXT} characters")
    if not storable(value):
        raise vol.Invalid("contains a NUL character or a lone surrogate (not UTF-8 text)")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _report_id(value: object) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as err:
        raise vol.Invalid("expected a UUID") from err


def _in_utc(parsed: datetime) -> datetime | None:
    """``parsed`` in UTC, None when that is outside what a datetime holds (year 1 at +01:00)."""
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def timestamp(now: Callable[[], datetime]) -> Callable[[object], datetime]:
    """An ISO 8601 time with an offset, from EARLIEST to now + clock skew; returns UTC."""

    def validate(value: object) -> datetime:
        if not isinstance(value, str):
            raise vol.Invalid("expected an ISO 8601 timestamp")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as err:
            raise vol.Invalid("expected an ISO 8601 timestamp") from err
        if parsed.tzinfo is None:
            raise vol.Invalid("timestamp needs a UTC offset")
        utc = _in_utc(parsed)
        if utc is None or utc < EARLIEST:
            raise vol.Invalid(
                f"timestamp outside the accepted window ({EARLIEST.date().isoformat()} "
                "to 10 minutes from now)"
            )
        if utc > now() + MAX_CLOCK_SKEW:
            raise vol.Invalid("timestamp is in the future")
        return utc

    return validate


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise vol.Invalid("expected a whole number from 0 to 2^31-1")
    return value


def _strict_int(low: int, high: int) -> Callable[[object], int]:
    def validate(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise vol.Invalid(f"expected a whole number from {low} to {high}")
        return value

    return validate


def _nullable(validator: Callable[[object], Any]) -> Callable[[object], Any]:
    """None, or whatever ``validator`` accepts (its own message on failure)."""

    def validate(value: object) -> Any:
        return None if value is None else validator(value)

    return validate


def _one_of(options: tuple[str, ...]) -> Callable[[object], str]:
    def validate(value: object) -> str:
        if value not in options:
            raise vol.Invalid(f"expected one of {', '.join(options)}")
        return str(value)

    return validate


def _strict_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise vol.Invalid("expected true or false")
    return value


def _fraction(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise vol.Invalid("expected a number from 0 to 1")
    return float(value)


def _utcnow() -> datetime:  # a named function, so the schema cache has a stable key
    return datetime.now(UTC)


@functools.cache
def build_schema(now: Callable[[], datetime] = _utcnow) -> vol.Schema:
    """The voluptuous schema of report v1; ``now`` decides what 'the future' is.

    Built once per clock (``now`` is called at validation time, not here): building it costs
    about as much as validating a report.
    """
    when = timestamp(now)
    device = vol.Schema(
        {
            vol.Required("id"): _text,
            vol.Required("name"): _text,
            vol.Required("room"): _optional_text,
            vol.Required("kind"): _text,
            vol.Required("battery"): _nullable(_strict_int(0, 100)),
            vol.Required("battery_state"): _nullable(_one_of(BATTERY_STATES)),
            vol.Required("connectivity"): _nullable(_one_of(CONNECTIVITY)),
            vol.Required("last_seen"): _nullable(when),
        }
    )
    activity = vol.Schema(
        {
            vol.Required("room"): _optional_text,
            vol.Required("sensor_id"): _text,
            vol.Required("at"): when,
        }
    )
    bridge = vol.Schema(
        {
            vol.Required("id"): _text,
            vol.Required("name"): _text,
            vol.Required("reachable"): _strict_bool,
            vol.Optional("time_zone"): _optional_text,
            vol.Optional("offline_since"): _nullable(when),
        }
    )
    verdict = vol.Schema(
        {
            vol.Required("state"): _one_of(VERDICT_STATES),
            vol.Required("since"): _nullable(when),
            vol.Required("reason"): _nullable(_one_of(VERDICT_REASONS)),
            vol.Required("limit_minutes"): _nullable(_strict_int(0, MAX_LIMIT_MINUTES)),
            vol.Required("learning"): _strict_bool,
            vol.Required("confidence"): _fraction,
            vol.Required("away"): _strict_bool,
            vol.Required("low_activity_today"): _strict_bool,
            vol.Required("last_activity"): _nullable(when),
        }
    )
    return vol.Schema(
        {
            vol.Required("schema"): vol.All(_strict_int(1, 1_000), _supported_version),
            vol.Required("home_id"): _text,
            vol.Required("report_id"): _report_id,
            vol.Required("sent_at"): when,
            vol.Required("bridge"): bridge,
            vol.Required("devices"): vol.All([device], vol.Length(max=MAX_DEVICES)),
            vol.Required("activity"): vol.All([activity], vol.Length(max=MAX_ACTIVITY)),
            vol.Required("counters"): vol.Schema({_text: _count}),
            vol.Optional("verdict"): verdict,
        }
    )


def _supported_version(value: int) -> int:
    if value != SCHEMA_VERSION:
        raise vol.Invalid(
            f"unsupported schema version {value} (this relay speaks {SCHEMA_VERSION})"
        )
    return value


# -- the fast path ------------------------------------------------------------------------------
#
# Nearly every report is valid, and voluptuous's generic machinery was the largest single cost of
# an ingest request (profiled: ~35 % of the relay's CPU). This plain code accepts a report only if
# every field is valid and returns exactly what the schema returns; on ANY doubt it gives up and
# the schema above decides and names the field. tests/relay/test_schema_fast.py checks, with
# generated reports, that the two agree.

_TOP = frozenset(
    ("schema", "home_id", "report_id", "sent_at", "bridge", "devices", "activity", "counters")
)
_BRIDGE_REQUIRED = frozenset(("id", "name", "reachable"))
_BRIDGE_OPTIONAL = frozenset(("time_zone", "offline_since"))
_DEVICE = frozenset(
    ("id", "name", "room", "kind", "battery", "battery_state", "connectivity", "last_seen")
)
_ACTIVITY = frozenset(("room", "sensor_id", "at"))
_VERDICT = frozenset(
    (
        "state",
        "since",
        "reason",
        "limit_minutes",
        "learning",
        "confidence",
        "away",
        "low_activity_today",
        "last_activity",
    )
)


class _Doubt(Exception):
    """The fast path is not sure: the schema decides."""


def _ok_text(value: object) -> str:
    if type(value) is not str or not value.strip() or len(value) > MAX_TEXT:
        raise _Doubt
    if not storable(value):
        raise _Doubt
    return value


def _ok_optional_text(value: object) -> str | None:
    return None if value is None else _ok_text(value)


def _ok_time(value: object, latest: datetime) -> datetime:
    if type(value) is not str:
        raise _Doubt
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise _Doubt from err
    if parsed.tzinfo is None:
        raise _Doubt
    utc = _in_utc(parsed)
    if utc is None or utc < EARLIEST or utc > latest:
        raise _Doubt
    return utc


def _ok_choice(value: object, options: tuple[str, ...]) -> str | None:
    if value is not None and value not in options:
        raise _Doubt
    return None if value is None else str(value)


def _ok_device(device: object, latest: datetime) -> dict[str, Any]:
    if type(device) is not dict or device.keys() != _DEVICE:
        raise _Doubt
    battery = device["battery"]
    if battery is not None and (type(battery) is not int or not 0 <= battery <= 100):
        raise _Doubt
    last_seen = device["last_seen"]
    return {
        "id": _ok_text(device["id"]),
        "name": _ok_text(device["name"]),
        "room": _ok_optional_text(device["room"]),
        "kind": _ok_text(device["kind"]),
        "battery": battery,
        "battery_state": _ok_choice(device["battery_state"], BATTERY_STATES),
        "connectivity": _ok_choice(device["connectivity"], CONNECTIVITY),
        "last_seen": None if last_seen is None else _ok_time(last_seen, latest),
    }


def _ok_bridge(bridge: object, latest: datetime) -> dict[str, Any]:
    if type(bridge) is not dict:
        raise _Doubt
    keys = bridge.keys()
    if not keys >= _BRIDGE_REQUIRED or not keys <= _BRIDGE_REQUIRED | _BRIDGE_OPTIONAL:
        raise _Doubt
    if type(bridge["reachable"]) is not bool:
        raise _Doubt
    checked: dict[str, Any] = {
        "id": _ok_text(bridge["id"]),
        "name": _ok_text(bridge["name"]),
        "reachable": bridge["reachable"],
    }
    if "time_zone" in bridge:
        checked["time_zone"] = _ok_optional_text(bridge["time_zone"])
    if "offline_since" in bridge:
        since = bridge["offline_since"]
        checked["offline_since"] = None if since is None else _ok_time(since, latest)
    return checked


def _ok_verdict(verdict: object, latest: datetime) -> dict[str, Any]:
    if type(verdict) is not dict or verdict.keys() != _VERDICT:
        raise _Doubt
    limit, confidence = verdict["limit_minutes"], verdict["confidence"]
    if limit is not None and (type(limit) is not int or not 0 <= limit <= MAX_LIMIT_MINUTES):
        raise _Doubt
    if type(confidence) not in {int, float} or not 0 <= confidence <= 1:
        raise _Doubt
    flags = (verdict["learning"], verdict["away"], verdict["low_activity_today"])
    if any(type(flag) is not bool for flag in flags):
        raise _Doubt
    if verdict["state"] not in VERDICT_STATES:
        raise _Doubt
    since, last = verdict["since"], verdict["last_activity"]
    return {
        "state": verdict["state"],
        "since": None if since is None else _ok_time(since, latest),
        "reason": _ok_choice(verdict["reason"], VERDICT_REASONS),
        "limit_minutes": limit,
        "learning": verdict["learning"],
        "confidence": float(confidence),
        "away": verdict["away"],
        "low_activity_today": verdict["low_activity_today"],
        "last_activity": None if last is None else _ok_time(last, latest),
    }


def _fast(payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    keys = payload.keys()
    if not (keys == _TOP or keys == _TOP | {"verdict"}) or type(payload["schema"]) is not int:
        raise _Doubt
    if payload["schema"] != SCHEMA_VERSION:
        raise _Doubt
    latest = now + MAX_CLOCK_SKEW
    devices, activity, counters = payload["devices"], payload["activity"], payload["counters"]
    if type(devices) is not list or len(devices) > MAX_DEVICES:
        raise _Doubt
    if type(activity) is not list or len(activity) > MAX_ACTIVITY:
        raise _Doubt
    if type(counters) is not dict:
        raise _Doubt
    events = []
    for event in activity:
        if type(event) is not dict or event.keys() != _ACTIVITY:
            raise _Doubt
        events.append(
            {
                "room": _ok_optional_text(event["room"]),
                "sensor_id": _ok_text(event["sensor_id"]),
                "at": _ok_time(event["at"], latest),
            }
        )
    for key, value in counters.items():
        _ok_text(key)
        if type(value) is not int or not 0 <= value < 2**31:
            raise _Doubt
    try:
        report_id = _report_id(payload["report_id"])
    except vol.Invalid as err:
        raise _Doubt from err
    checked = {
        "schema": SCHEMA_VERSION,
        "home_id": _ok_text(payload["home_id"]),
        "report_id": report_id,
        "sent_at": _ok_time(payload["sent_at"], latest),
        "bridge": _ok_bridge(payload["bridge"], latest),
        "devices": [_ok_device(device, latest) for device in devices],
        "activity": events,
        "counters": dict(counters),
    }
    if "verdict" in payload:
        checked["verdict"] = _ok_verdict(payload["verdict"], latest)
    return checked


def fast_validate(payload: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The validated report if the fast path is sure it is valid; None otherwise."""
    try:
        return _fast(payload, now)
    except _Doubt:
        return None


class ReportError(ValueError):
    """A report that breaks the contract; ``field`` is a dotted path (``devices.3.battery``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def validate_report(payload: object, now: Callable[[], datetime] = _utcnow) -> dict[str, Any]:
    """Validated report with timestamps as aware UTC datetimes, or :class:`ReportError`."""
    if not isinstance(payload, dict):
        raise ReportError("", "a report is a JSON object")
    if (fast := fast_validate(payload, now())) is not None:
        return fast
    try:
        validated: dict[str, Any] = build_schema(now)(payload)
    except vol.MultipleInvalid as err:
        first = err.errors[0]
        raise ReportError(".".join(str(p) for p in first.path), first.msg) from err
    return validated
