"""Text from the bridge made safe to show and to store, once, at the parser boundary.

Names come from users' Hue apps (and from whatever a bridge or a proxy sends): they may hold lone
surrogates (not valid Unicode: HA's registries then fail to save, for every integration),
control characters, bidirectional overrides, or nothing but spaces. Everything above hue/ may
assume a name is valid Unicode, single-line, non-blank and at most :data:`MAX_NAME` characters.
"""

from __future__ import annotations

import re
import unicodedata

#: Hue allows 32 characters per name; other text (product names, versions) is short too.
MAX_NAME = 64
#: Resource ids are UUIDs (36 characters); anything else is suspect and is skipped.
MAX_ID = 64

_REPLACEMENT = "\ufffd"
#: Characters that reorder or hide text (bidirectional controls), and line/paragraph separators.
_INVISIBLE = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SPACES = re.compile(r"\s+")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")


def _clean_char(char: str) -> str:
    category = unicodedata.category(char)
    if category == "Cs":  # a lone surrogate: not a character at all
        return _REPLACEMENT
    if category in ("Cc", "Zl", "Zp") or char in _INVISIBLE:
        return " "  # control characters and line breaks separate words; spaces collapse below
    if category == "Cn" and (0xFDD0 <= ord(char) <= 0xFDEF or ord(char) & 0xFFFE == 0xFFFE):
        return ""  # noncharacters
    return char


def clean_text(value: object, limit: int = MAX_NAME) -> str | None:
    """Valid Unicode on one line, spaces collapsed, at most ``limit`` characters; None if blank
    or not a string."""
    if not isinstance(value, str):
        return None
    if value.isascii() and value.isprintable() and "  " not in value:
        text = value.strip()  # the common case, without a pass per character
    else:
        text = _SPACES.sub(" ", "".join(_clean_char(char) for char in value)).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or None


def clean_name(value: object, fallback: str) -> str:
    """A name fit to show: :func:`clean_text`, or ``fallback`` when nothing is left."""
    return clean_text(value) or fallback


def fallback_name(kind: str, resource_id: str) -> str:
    """What to call a resource without a usable name: "Hue device 1a2b" (from its id)."""
    short = "".join(char for char in resource_id if char.isalnum())[:4] or "0000"
    return f"Hue {kind} {short.lower()}"


def valid_id(value: object) -> str | None:
    """A resource id as bridges write them (UUIDs), else None: such a resource is skipped."""
    if isinstance(value, str) and len(value) <= MAX_ID and _ID.fullmatch(value):
        return value
    return None
