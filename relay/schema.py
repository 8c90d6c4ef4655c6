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

BATTERY_STATES: Final = ("normal", "low", "critical")
CONNECTIVITY: Final = (
    "connected",
    "disconnected",
    "connectivity_issue",
    "unidirectional_incoming",
    "pending_discovery",
)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("expected a string")
    if not value.strip() or len(value) > MAX_TEXT:
        raise vol.Invalid(f"expected 1 to {MAX_TEXT} characters")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _report_id(value: object) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as err:
        raise vol.Invalid("expected a UUID") from err


def timestamp(now: Callable[[], datetime]) -> Callable[[object], datetime]:
    """An ISO 8601 time with an offset, not in the future (beyond clock skew); returns UTC."""

    def validate(value: object) -> datetime:
        if not isinstance(value, str):
            raise vol.Invalid("expected an ISO 8601 timestamp")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as err:
            raise vol.Invalid("expected an ISO 8601 timestamp") from err
        if parsed.tzinfo is None:
            raise vol.Invalid("timestamp needs a UTC offset")
        parsed = parsed.astimezone(UTC)
        if parsed > now() + MAX_CLOCK_SKEW:
            raise vol.Invalid("timestamp is in the future")
        return parsed

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
        }
    )


def _supported_version(value: int) -> int:
    if value != SCHEMA_VERSION:
        raise vol.Invalid(
            f"unsupported schema version {value} (this relay speaks {SCHEMA_VERSION})"
        )
    return value


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
    try:
        validated: dict[str, Any] = build_schema(now)(payload)
    except vol.MultipleInvalid as err:
        first = err.errors[0]
        raise ReportError(".".join(str(p) for p in first.path), first.msg) from err
    return validated
