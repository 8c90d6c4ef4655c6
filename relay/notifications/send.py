"""Sending through Apprise, with the caregiver's URL kept out of every message and log."""

from __future__ import annotations

from dataclasses import dataclass
import os

import apprise

#: Notification services only: no file://, no config includes, nothing that makes the relay
#: read from an address. Extend with HPOLL_RELAY_APPRISE_SCHEMES (comma-separated).
DEFAULT_SCHEMES = frozenset(
    {
        "mailto",
        "mailtos",
        "tgram",
        "ntfy",
        "ntfys",
        "json",
        "jsons",
        "form",
        "forms",
        "slack",
        "discord",
        "msteams",
        "gotify",
        "gotifys",
        "pover",
        "pushover",
        "signal",
        "signals",
        "matrix",
        "matrixs",
        "mmost",
        "mmosts",
        "rocket",
        "rockets",
        "whatsapp",
        "twilio",
        "sns",
        "pbul",
        "ifttt",
        "zulip",
        "threema",
        "line",
        "apprise",
        "apprises",
    }
)


def allowed_schemes() -> frozenset[str]:
    """The schemes caregivers' URLs may use."""
    extra = os.environ.get("HPOLL_RELAY_APPRISE_SCHEMES", "")
    return DEFAULT_SCHEMES | {s.strip().lower() for s in extra.split(",") if s.strip()}


def validate_apprise_url(url: str) -> str:
    """The URL if Apprise accepts it and its scheme is allowed; ValueError otherwise.

    Error messages name the scheme at most, never the URL: it may hold a password or token.
    """
    scheme, separator, _ = url.strip().partition("://")
    if not separator or not scheme:
        raise ValueError("not an Apprise URL (expected scheme://...)")
    if scheme.lower() not in allowed_schemes():
        raise ValueError(f"the '{scheme.lower()}' scheme is not allowed for caregivers")
    if not apprise.Apprise().add(url.strip()):
        raise ValueError(f"Apprise rejects this {scheme.lower()}:// URL; check its format")
    return url.strip()


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one send went (no URL in it)."""

    ok: bool
    detail: str


async def deliver(url: str, title: str, body: str, markdown: bool = False) -> Delivery:
    """Send one message; Apprise 2 answers with an AppriseResult, never None."""
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return Delivery(False, "the stored URL is no longer accepted by Apprise")
    result = await notifier.async_notify(
        title=title,
        body=body,
        body_format=apprise.NotifyFormat.MARKDOWN if markdown else apprise.NotifyFormat.TEXT,
    )
    if result.success_count > 0 and result.failed_count == 0:
        return Delivery(True, f"delivered via {', '.join(r.name for r in result.results)}")
    return Delivery(
        False,
        f"{result.failed_count} of {len(result.results)} services failed "
        f"({', '.join(r.name for r in result.results)})",
    )
