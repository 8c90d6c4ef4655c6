"""Everyday words for times, spans and devices, and the cleaning of names chosen in a home."""

from __future__ import annotations

from datetime import datetime, timedelta
import re
import unicodedata
from zoneinfo import ZoneInfo

#: Names longer than this are cut (with an ellipsis): a name is a label, not a letter.
NAME_MAX = 80
_SPACES = re.compile(r"\s+")
#: A scheme separator, so a name can never be a working address in a service that links
#: addresses by itself (a zero-width space is put into it).
_SCHEME = re.compile(r"(?<=[A-Za-z]):(?=//)")


def clean(name: str | None, fallback: str = "unnamed") -> str:
    """A name from the home, safe to show anywhere: control and direction-changing characters
    removed, whitespace (line breaks too) folded to single spaces, cut at ``NAME_MAX``, and any
    ``scheme://`` broken so no service turns it into a link. Escaping for each format is the
    renderer's job (``document.py``)."""
    if not name:
        return fallback
    kept = "".join(
        " " if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char
        for char in name
        if unicodedata.category(char) != "Cf"
    )
    text = _SPACES.sub(" ", kept).strip()
    if len(text) > NAME_MAX:
        text = text[: NAME_MAX - 1].rstrip() + "…"
    return _SCHEME.sub(":\u200b", text) or fallback


def clock(when: datetime, zone: ZoneInfo) -> str:
    """'14:05' in the home's time."""
    return when.astimezone(zone).strftime("%H:%M")


def dated(when: datetime, zone: ZoneInfo) -> str:
    """'Sat 28 Mar 14:05' in the home's time: never ambiguous."""
    local = when.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def day(when: datetime, zone: ZoneInfo) -> str:
    """'Saturday 28 March'."""
    local = when.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B}"


def when(at: datetime, zone: ZoneInfo, now: datetime) -> str:
    """'14:05' today, 'yesterday 14:05', else 'Sat 28 Mar 14:05' (all in the home's time)."""
    local, today = at.astimezone(zone), now.astimezone(zone).date()
    if local.date() == today:
        return local.strftime("%H:%M")
    if local.date() == today - timedelta(days=1):
        return "yesterday " + local.strftime("%H:%M")
    return dated(at, zone)


def span(delta: timedelta) -> str:
    """'under a minute', '45 minutes', '1 hour', '4 hours 5 minutes', '2 days 3 hours'."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes and not days:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


def plural(count: int, one: str, many: str | None = None) -> str:
    """'1 movement', '3 movements'."""
    return f"{count} {one if count == 1 else many or one + 's'}"


#: What each kind of device (as the home reports it) is called, and what its failing means.
DEVICE_WORDS: dict[str, tuple[str, str]] = {
    "motion_sensor": ("motion sensor", "movement there can no longer be noticed"),
    "contact_sensor": ("door sensor", "opening and closing can no longer be noticed"),
    "camera": ("camera", "movement there can no longer be noticed"),
    "switch": ("light switch", "the switch stops working; watching over the home does not"),
    "sensor": ("sensor", "its readings stop"),
}


def device_kind(kind: str | None) -> str:
    """'motion sensor', 'light switch', … ('device' for anything else, e.g. a lamp)."""
    return DEVICE_WORDS.get(kind or "", ("device", ""))[0]


def device_effect(kind: str | None) -> str:
    """What stops when the device stops (empty when nothing we watch depends on it)."""
    return DEVICE_WORDS.get(kind or "", ("device", ""))[1]


def device_label(name: str | None, room: str | None, kind: str | None) -> str:
    """'the motion sensor "Hall sensor" in the Hallway': the kind first, the home's own name
    quoted, the room unless the name already says it."""
    label = clean(name)
    words = f'the {device_kind(kind)} "{label}"'
    where = clean(room, "")
    if where and where.casefold() not in label.casefold():
        words += " " + in_room(where)
    return words


def in_room(room: str | None, fallback: str = "an unnamed room") -> str:
    """'in the Kitchen', "in Anna's room", 'in The Den' (a room's name from the home)."""
    name = clean(room, "")
    if not name:
        return f"in {fallback}"
    own = name.lower().startswith("the ") or "'s " in name or "\u2019s " in name
    return f"in {name}" if own else f"in the {name}"
