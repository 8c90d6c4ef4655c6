"""The report contract (integration -> relay), schema version 1: the ONE place it is defined.

A report is what one home says about itself at one moment: its bridge, its devices' battery and
connectivity, the activity seen since the last report, and counters. It is a tree of typed
:class:`msgspec.Struct` classes; the relay decodes a request body straight into :class:`Report`
(:func:`decode_report`), so JSON parsing, type checks and constraints happen in one pass, in C.
What a type cannot say — the time window, which moves with the clock, and the counters' range
per named counter — :func:`decode_report` checks right after, in the same call. Validation is
strict: an unknown schema version, a wrong type, an absurd value (battery 300 %, a timestamp from
the future), text a database cannot hold or an unknown key is refused with a message naming the
field.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
import functools
import json
import re
from typing import Annotated, Any, Final, Literal, get_args
import uuid

import msgspec

SCHEMA_VERSION: Final = 1
#: Clocks drift; a home's clock may run a little ahead of ours, never hours ahead.
MAX_CLOCK_SKEW: Final = timedelta(minutes=10)
MAX_DEVICES: Final = 2_000
MAX_ACTIVITY: Final = 20_000
MAX_TEXT: Final = 200
MAX_COUNT: Final = 2**31 - 1
MAX_LIMIT_MINUTES: Final = 100_000
#: The accepted time window: from here to now + MAX_CLOCK_SKEW. Earlier is a clock that was
#: never set (a bridge's 1970), not a moment hpoll can say anything about.
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)

#: Text every database can hold and a person can read: at most MAX_TEXT characters, not blank
#: (what ``str.strip`` strips), no NUL (PostgreSQL refuses it): :func:`decode_report` checks
#: the last two for every Text at once (as a ``pattern``, msgspec called a regular expression
#: per string: two thirds of the decoding time). Lone surrogates (SQLite refuses them) never
#: reach a Struct: the JSON decoder refuses them.
type Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
_TEXT_RULE: Final = f"expected 1 to {MAX_TEXT} characters, not blank, without NUL characters"
type Moment = Annotated[datetime, msgspec.Meta(tz=True)]
type BatteryState = Literal["normal", "low", "critical"]
type Connectivity = Literal[
    "connected",
    "disconnected",
    "connectivity_issue",
    "unidirectional_incoming",
    "pending_discovery",
]
#: The inactivity verdict (custom_components/hpoll/activity/detector.py; a test keeps the two
#: sides equal): its states, and why it is "inactive" or "unknown".
type VerdictState = Literal["active", "resting", "away", "inactive", "unknown"]
type VerdictReason = Literal[
    "unusual_gap", "not_up", "one_sensor", "safety_net", "no_activity", "unreachable"
]

VERDICT_STATES: Final[tuple[str, ...]] = get_args(VerdictState.__value__)
VERDICT_REASONS: Final[tuple[str, ...]] = get_args(VerdictReason.__value__)


class _Part(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """Every part of a report refuses keys it does not know; none can form a cycle."""


class Bridge(_Part):
    """The home's Hue bridge as the integration last saw it."""

    id: Text
    name: Text
    reachable: bool
    time_zone: Text | None = None
    offline_since: Moment | None = None


class Device(_Part):
    """One device worth watching; every field is required, ``null`` where unknown."""

    id: Text
    name: Text
    room: Text | None
    kind: Text
    battery: Annotated[int, msgspec.Meta(ge=0, le=100)] | None
    battery_state: BatteryState | None
    connectivity: Connectivity | None
    last_seen: Moment | None


class Activity(_Part):
    """One moment of activity a sensor reported."""

    room: Text | None
    sensor_id: Text
    at: Moment


class Verdict(_Part):
    """The home's inactivity detector's verdict, which the relay alerts on."""

    state: VerdictState
    since: Moment | None
    reason: VerdictReason | None
    limit_minutes: Annotated[int, msgspec.Meta(ge=0, le=MAX_LIMIT_MINUTES)] | None
    learning: bool
    confidence: Annotated[float, msgspec.Meta(ge=0, le=1)]
    away: bool
    low_activity_today: bool
    last_activity: Moment | None

    def as_json(self) -> dict[str, Any]:
        """As stored (a JSON column): its moments as ISO 8601 text. (Field by field: through
        ``msgspec.structs.asdict`` it took longer than encoding the result; a test checks it
        against the model's fields.)"""
        since, last_activity = self.since, self.last_activity
        return {
            "state": self.state,
            "since": None if since is None else since.isoformat(),
            "reason": self.reason,
            "limit_minutes": self.limit_minutes,
            "learning": self.learning,
            "confidence": self.confidence,
            "away": self.away,
            "low_activity_today": self.low_activity_today,
            "last_activity": None if last_activity is None else last_activity.isoformat(),
        }


class Report(_Part):
    """Report v1. Once :func:`decode_report` returns it, every moment in it is UTC."""

    schema: int
    home_id: Text
    report_id: uuid.UUID
    sent_at: Moment
    bridge: Bridge
    devices: Annotated[list[Device], msgspec.Meta(max_length=MAX_DEVICES)]
    activity: Annotated[list[Activity], msgspec.Meta(max_length=MAX_ACTIVITY)]
    counters: dict[Text, int]
    #: Absent in reports from integrations older than the detector; ``null`` is refused.
    verdict: Verdict | msgspec.UnsetType = msgspec.UNSET


_DECODER: Final = msgspec.json.Decoder(Report)


class ReportError(ValueError):
    """A report that breaks the contract (422); ``field`` is a dotted path
    (``devices.3.battery``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class BodyError(ValueError):
    """A body that is not a JSON document at all (400)."""


def decode_report(body: str | bytes, now: datetime | None = None) -> Report:
    """The report in ``body`` (JSON), with every moment in UTC; ``now`` (default: the clock)
    decides what 'the future' is. :class:`ReportError` (422) for a report breaking the
    contract, :class:`BodyError` (400) for a body that is not JSON."""
    try:
        report = _DECODER.decode(body)
    except (msgspec.DecodeError, RecursionError) as err:
        raise _diagnose(body, err) from err
    except UnicodeDecodeError as err:  # bytes only: a str body was decoded already
        raise BodyError("the body is not UTF-8") from err
    latest = (now or datetime.now(UTC)) + MAX_CLOCK_SKEW
    if report.schema != SCHEMA_VERSION:
        raise _unsupported(report.schema)
    report.sent_at = _moment(report.sent_at, "sent_at", latest)
    bridge = report.bridge
    if bridge.offline_since is not None:
        bridge.offline_since = _moment(bridge.offline_since, "bridge.offline_since", latest)
    for index, device in enumerate(report.devices):
        if device.last_seen is not None:
            device.last_seen = _moment(device.last_seen, f"devices.{index}.last_seen", latest)
    for index, event in enumerate(report.activity):
        event.at = _moment(event.at, f"activity.{index}.at", latest)
    for name, count in report.counters.items():
        if not 0 <= count <= MAX_COUNT:
            raise ReportError(f"counters.{name}", "expected a whole number from 0 to 2^31-1")
    texts = _texts(report)
    if "\x00" in "".join(texts) or not all(map(str.strip, texts)):
        field = next(path for path, text in _text_fields(report) if not _readable(text))
        raise ReportError(field, _TEXT_RULE)
    if isinstance(verdict := report.verdict, Verdict):
        if verdict.since is not None:
            verdict.since = _moment(verdict.since, "verdict.since", latest)
        if verdict.last_activity is not None:
            verdict.last_activity = _moment(verdict.last_activity, "verdict.last_activity", latest)
    return report


def _texts(report: Report) -> list[str]:
    """Every Text in ``report``, gathered by hand: as fast as Python gets (a test checks it
    against :func:`_text_fields`, which reads the model)."""
    bridge = report.bridge
    texts = [report.home_id, bridge.id, bridge.name, *report.counters]
    if bridge.time_zone is not None:
        texts.append(bridge.time_zone)
    for device in report.devices:
        texts += (device.id, device.name, device.kind)
        if device.room is not None:
            texts.append(device.room)
    for event in report.activity:
        texts.append(event.sensor_id)
        if event.room is not None:
            texts.append(event.room)
    return texts


def _readable(text: str) -> bool:
    return "\x00" not in text and bool(text.strip())


def _text_fields(value: object, kind: Any = None, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, text) of every Text in ``value``, found through the model (only a refused
    report comes here). A dict's key is named by its dict, as msgspec names it."""
    kind = _model() if kind is None else kind
    if value is None or value is msgspec.UNSET:
        return
    if isinstance(kind, msgspec.inspect.UnionType):
        kind = next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
    here = f"{path}." if path else ""
    if isinstance(kind, msgspec.inspect.StrType) and kind.max_length == MAX_TEXT:
        yield path, str(value)
    elif isinstance(kind, msgspec.inspect.StructType):
        for part in kind.fields:
            yield from _text_fields(getattr(value, part.name), part.type, here + part.name)
    elif isinstance(kind, msgspec.inspect.ListType) and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _text_fields(item, kind.item_type, f"{here}{index}")
    elif isinstance(kind, msgspec.inspect.DictType) and isinstance(value, dict):
        for key in value:
            yield from ((path, text) for _, text in _text_fields(key, kind.key_type, path))


_WINDOW: Final = (
    f"timestamp outside the accepted window ({EARLIEST.date().isoformat()} to 10 minutes from now)"
)


def _moment(value: datetime, field: str, latest: datetime) -> datetime:
    """``value`` in UTC if it lies from EARLIEST to ``latest``, else :class:`ReportError`."""
    if value.tzinfo is not UTC:
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # year 1 at +01:00, year 9999 at -01:00
            raise ReportError(field, _WINDOW) from None
    if value < EARLIEST:
        raise ReportError(field, _WINDOW)
    if value > latest:
        raise ReportError(field, "timestamp is in the future")
    return value


def _unsupported(version: object) -> ReportError:
    return ReportError(
        "schema", f"unsupported schema version {version} (this relay speaks {SCHEMA_VERSION})"
    )


# -- telling the sender what is wrong (only refused bodies come here) ---------------------------


def _diagnose(body: str | bytes, err: Exception) -> ValueError:
    """Why ``body`` was refused, as :class:`BodyError` (not JSON) or :class:`ReportError`.

    Whether a body is JSON at all comes first: a typed decode stops at the first field that is
    wrong, perhaps long before the place where the body stops being JSON.
    """
    try:
        tree = msgspec.json.decode(body)
    except RecursionError:
        return BodyError("the JSON is nested too deeply")
    except msgspec.DecodeError:
        # JSON msgspec refuses and the standard library reads: a string with a lone surrogate
        # (\ud800), which no database here can hold, or NaN / Infinity (not JSON). Only a body
        # with a surrogate escape is parsed again (to name the field): refused garbage costs
        # no more than before.
        escape = _SURROGATE_TEXT if isinstance(body, str) else _SURROGATE_BYTES
        if escape.search(body) is None:  # type: ignore[arg-type]
            return BodyError("the body is not JSON")
        tree = _stdlib_tree(body)
        if isinstance(tree, BodyError):
            return tree
        if (field := _lone_surrogate(tree)) is not None:
            return ReportError(field, "contains a lone surrogate (not UTF-8 text)")
        return BodyError("the body is not JSON")
    if not isinstance(tree, dict):
        return ReportError("", "a report is a JSON object")
    version = tree.get("schema")
    if type(version) is int and version != SCHEMA_VERSION:
        return _unsupported(version)  # before naming fields a later version may have
    if isinstance(err, msgspec.ValidationError):
        return _report_error(str(err))
    return BodyError("the body is not JSON")  # pragma: no cover (msgspec read it just now)


_SURROGATE_TEXT: Final = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_BYTES: Final = re.compile(rb"\\u[dD][89a-fA-F]")


def _stdlib_tree(body: str | bytes) -> object:
    try:
        return json.loads(body)
    except RecursionError:
        return BodyError("the JSON is nested too deeply")
    except ValueError:
        return BodyError("the body is not JSON")


def _lone_surrogate(tree: object, path: str = "") -> str | None:
    """The dotted path of the first string (or key) in ``tree`` that is not UTF-8 text."""
    if isinstance(tree, str):
        try:
            tree.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    items: list[tuple[object, object]] = []
    if isinstance(tree, dict):
        items = list(tree.items())
    elif isinstance(tree, list):
        items = list(enumerate(tree))
    for key, value in items:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and _lone_surrogate(key) is not None:
            return path or here
        if (found := _lone_surrogate(value, here)) is not None:
            return found
    return None


_AT = re.compile(r"(?P<message>.*?)(?: - at (?:`key` in )?`\$(?P<path>[^`]*)`)?", re.DOTALL)
_INDEX = re.compile(r"\[(\d+)\]")
_NAMED = re.compile(r"Object (?:missing required|contains unknown) field `(?P<name>[^`]*)`")
_WORDS: Final = {
    "str": "a string",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "null": "null",
    "array": "a list",
    "object": "an object",
    "datetime": "an ISO 8601 timestamp",
    "uuid": "a UUID",
}
_LENGTH = re.compile(r"of length <= (\d+)")
_TYPES = re.compile(r"`([a-z]+(?: \| [a-z]+)*)`")


def _report_error(text: str) -> ReportError:
    """msgspec's message (``Expected `int` <= 100 - at `$.devices[0].battery```) in the
    relay's words, with the field as a dotted path (``devices.0.battery``)."""
    match = _AT.fullmatch(text)
    assert match is not None  # every text matches: the path part is optional
    message, path = match["message"], match["path"] or ""
    # ``$.devices[0].battery`` -> ``devices.0.battery``; a dict's value (``$.counters[...]``)
    # is named by its dict.
    path = path.removesuffix("[...]")
    field = _INDEX.sub(lambda index: f".{index[1]}", path).removeprefix(".")
    if (named := _NAMED.match(message)) is not None:
        field = f"{field}.{named['name']}" if field else named["name"]
        message = "required field missing" if "missing" in message else "unknown field"
    elif "`str` of length" in message:
        message = _TEXT_RULE
    elif (expected := _expected(field)) is not None and not message.startswith("Expected `"):
        message = f"{message.replace('Invalid enum value', 'invalid value')}; expected {expected}"
    elif expected is not None and _BOUND.search(message):
        message = f"expected {expected}"
    else:
        message = _TYPES.sub(
            lambda types: " or ".join(_WORDS.get(t, t) for t in types[1].split(" | ")), message
        )
        message = message.replace("with a timezone component", "with a UTC offset").replace(
            "Invalid RFC3339 encoded datetime", "expected an ISO 8601 (RFC 3339) timestamp"
        )
        message = _LENGTH.sub(r"of at most \1 items", message)
        message = message[:1].lower() + message[1:]
    return ReportError(field, message)


_BOUND = re.compile(r"[<>]=? ")


@functools.cache
def _model() -> msgspec.inspect.Type:
    return msgspec.inspect.type_info(Report)


def _expected(field: str) -> str | None:
    """What the report's model says a bounded number or a choice at ``field`` must be."""
    kind = _model()
    for part in field.split("."):  # a path msgspec named: every part exists in the model
        if isinstance(kind, msgspec.inspect.ListType):
            kind = kind.item_type
        else:
            assert isinstance(kind, msgspec.inspect.StructType)
            kind = next(f.type for f in kind.fields if f.name == part)
    nullable = False
    if isinstance(kind, msgspec.inspect.UnionType):
        nullable = any(isinstance(t, msgspec.inspect.NoneType) for t in kind.types)
        kind = next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
    if isinstance(kind, msgspec.inspect.LiteralType):
        expected = f"one of {', '.join(map(str, kind.values))}"
    elif isinstance(kind, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        noun = "a whole number" if isinstance(kind, msgspec.inspect.IntType) else "a number"
        expected = f"{noun} from {kind.ge} to {kind.le}"
    else:
        return None
    return f"{expected} or null" if nullable else expected
