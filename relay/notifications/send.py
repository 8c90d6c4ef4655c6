"""Sending through Apprise, with the caregiver's URL kept out of every message and log."""

from __future__ import annotations

from dataclasses import dataclass
import os
from typing import Any

import apprise
from apprise import NotifyFormat
from apprise.plugins.email import NotifyEmail

from ..messages.document import Document, Format, render, title_for

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


#: The sender's display name (e-mail "From", and services that show one).
SENDER_NAME = "hpoll"


def service_format(plugin: Any) -> Format:
    """How to write for a service: an HTML e-mail layout for e-mail, Markdown where the service
    renders it (its native format, Apprise's first, is Markdown or, for chats like Telegram,
    HTML that Apprise converts Markdown into), plain text for everything else (webhooks, SMS)."""
    if isinstance(plugin, NotifyEmail):
        return "email"
    native = plugin.notify_format
    first = native[0] if isinstance(native, (tuple, list)) else native
    if first in (NotifyFormat.MARKDOWN, NotifyFormat.HTML):
        return "markdown"
    return "plain"


_BODY_FORMAT: dict[Format, NotifyFormat] = {
    "email": NotifyFormat.HTML,
    "markdown": NotifyFormat.MARKDOWN,
    "plain": NotifyFormat.TEXT,
}


async def deliver(url: str, document: Document) -> Delivery:
    """Send one message, written in the service's own format; Apprise 2 answers with an
    AppriseResult, never None."""
    plugin = apprise.Apprise.instantiate(url, asset=apprise.AppriseAsset(app_id=SENDER_NAME))
    if not plugin:
        return Delivery(False, "the stored URL is no longer accepted by Apprise")
    form = service_format(plugin)
    notifier = apprise.Apprise(asset=apprise.AppriseAsset(app_id=SENDER_NAME))
    notifier.add(plugin)
    result = await notifier.async_notify(
        title=title_for(document, form),
        body=render(document, form),
        body_format=_BODY_FORMAT[form],
    )
    if result.success_count > 0 and result.failed_count == 0:
        return Delivery(True, f"delivered via {', '.join(r.name for r in result.results)}")
    return Delivery(
        False,
        f"{result.failed_count} of {len(result.results)} services failed "
        f"({', '.join(r.name for r in result.results)})",
    )
