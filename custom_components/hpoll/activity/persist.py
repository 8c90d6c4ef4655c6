"""Typed values of the detector's state in progress, written as JSON for a restart and read back.

Each kind has a writer and a reader; a reader raises ``TypeError`` or ``ValueError`` on what it
cannot read (the caller then keeps its default: a broken store is never fatal). Pure Python.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .tracker import ActivityEvent, restore_time, restore_times

#: Minutes per night are kept for this many of the latest nights (the one in progress and the
#: one before: a night is counted by the local day its evening began).
NIGHTS_KEPT = 2


def _time(raw: Any) -> datetime | None:
    if raw is None:
        return None
    when = restore_time(raw)
    if when is None:
        raise ValueError("not a plausible aware time")
    return when


def _optional_str(raw: Any) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    raise TypeError("not a text")


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    raise TypeError("not a truth value")


def _optional_int(raw: Any) -> int | None:
    if raw is None or type(raw) is int:
        return raw
    raise TypeError("not a whole number")


def _texts(raw: Any) -> set[str]:
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return set(raw)
    raise TypeError("not a list of texts")


def _times(raw: Any) -> dict[str, datetime]:
    if isinstance(raw, dict):
        return restore_times(raw)
    raise TypeError("not a mapping of times")


def _numbers(raw: Any) -> list[float]:
    if isinstance(raw, list) and all(type(n) in (int, float) for n in raw):
        return [float(n) for n in raw]
    raise TypeError("not a list of numbers")


def _per_night(raw: Any) -> dict[int, float]:
    if not isinstance(raw, dict):
        raise TypeError("not a mapping of nights")
    return {
        int(night): float(minutes)
        for night, minutes in raw.items()
        if str(night).isdecimal() and type(minutes) in (int, float)
    }


def _latest_nights(value: dict[int, float]) -> dict[str, float]:
    latest = sorted(value)[-NIGHTS_KEPT:]
    return {str(night): value[night] for night in latest}


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _event_out(event: ActivityEvent | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "sensor_id": event.sensor_id,
        "room": event.room,
        "at": event.at.isoformat(),
        "kind": event.kind,
        "ongoing": event.ongoing,
        "motion_on": event.motion_on,
    }


def _event(raw: Any) -> ActivityEvent | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("sensor_id"), str):
        raise TypeError("not an event")
    at = _time(raw.get("at"))
    motion_on = raw.get("motion_on")
    if at is None or not isinstance(raw.get("kind"), str) or motion_on not in (None, True, False):
        raise TypeError("not an event")
    return ActivityEvent(
        raw["sensor_id"],
        _optional_str(raw.get("room")),
        at,
        raw["kind"],
        ongoing=_bool(raw.get("ongoing")),
        motion_on=motion_on,
    )


def _events_out(events: list[ActivityEvent]) -> list[dict[str, Any] | None]:
    return [_event_out(event) for event in events]


def _events(raw: Any) -> list[ActivityEvent]:
    if not isinstance(raw, list):
        raise TypeError("not a list of events")
    return [event for event in map(_event, raw) if event is not None]


def _time_lists_out(value: dict[str, list[datetime]]) -> dict[str, list[str]]:
    return {key: [when.isoformat() for when in times] for key, times in value.items()}


def _time_lists(raw: Any) -> dict[str, list[datetime]]:
    if not isinstance(raw, dict) or not all(isinstance(times, list) for times in raw.values()):
        raise TypeError("not a mapping of time lists")
    return {
        str(key): [when for when in map(_time, times) if when is not None]
        for key, times in raw.items()
    }


#: kind -> (write, read).
CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "time": (_iso, _time),
    "str": (lambda value: value, _optional_str),
    "bool": (lambda value: value, _bool),
    "day": (lambda value: value, _optional_int),
    "texts": (sorted, _texts),
    "times": (lambda value: {key: when.isoformat() for key, when in value.items()}, _times),
    "numbers": (list, _numbers),
    "per_night": (_latest_nights, _per_night),
    "event": (_event_out, _event),
    "events": (_events_out, _events),
    "time_lists": (_time_lists_out, _time_lists),
}


def write(kinds: dict[str, str], owner: object) -> dict[str, Any]:
    """``owner``'s attributes named in ``kinds`` (name -> kind), by their name without the
    leading underscore."""
    return {name.lstrip("_"): CODECS[kind][0](getattr(owner, name)) for name, kind in kinds.items()}


def read(
    kinds: dict[str, str], owner: object, data: dict[str, Any], latest: datetime | None
) -> None:
    """Set ``owner``'s attributes from ``write``'s ``data``; what is missing or unreadable
    keeps its value, and so does a time after ``latest`` (a day after its day): a corrupt
    store's future would end no silence (every movement "reported late")."""
    for name, kind in kinds.items():
        key = name.lstrip("_")
        if key not in data:
            continue
        try:
            value = CODECS[kind][1](data[key])
            if latest is not None:
                value = _not_after(kind, value, latest)
        except (TypeError, ValueError):
            continue
        setattr(owner, name, value)


def _not_after(kind: str, value: Any, latest: datetime) -> Any:
    """``value`` without what comes after ``latest``; ValueError when it is one such time."""
    if kind in ("time", "event") and value is not None:
        if (value if kind == "time" else value.at) > latest:
            raise ValueError("a time to come")
    elif kind == "day" and value is not None and value > latest.toordinal() + 1:
        raise ValueError("a day to come")
    elif kind == "times":
        return {key: when for key, when in value.items() if when <= latest}
    elif kind == "time_lists":
        return {key: [when for when in times if when <= latest] for key, times in value.items()}
    return value
