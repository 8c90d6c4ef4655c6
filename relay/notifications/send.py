"""Sending through Apprise, with the caregiver's URL kept out of every message and log."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import ipaddress
import os
import socket

import apprise
from apprise import NotifyBase
from apprise.plugins import url_to_dict
from apprise.utils.parse import parse_urls

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


PRIVATE_ENV = "HPOLL_RELAY_ALLOW_PRIVATE_TARGETS"


def allowed_schemes() -> frozenset[str]:
    """The schemes caregivers' URLs may use."""
    extra = os.environ.get("HPOLL_RELAY_APPRISE_SCHEMES", "")
    return DEFAULT_SCHEMES | {s.strip().lower() for s in extra.split(",") if s.strip()}


def private_targets_allowed() -> bool:
    """Whether URLs may point at loopback, link-local or private addresses (the operator says
    so with HPOLL_RELAY_ALLOW_PRIVATE_TARGETS=1: a self-hosted ntfy on the LAN, tests, demo)."""
    return os.environ.get(PRIVATE_ENV, "").strip().lower() in ("1", "true", "yes")


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _hosts(service: NotifyBase) -> set[str]:
    """The hosts a service connects to that come from the URL: the host of self-hostable
    services (those with a plain and a secure scheme: json, ntfy, gotify, matrix…) and an
    e-mail service's SMTP server. A SaaS plugin's "host" is a token, never connected to."""
    hosts = set()
    if getattr(service, "protocol", None) and (host := getattr(service, "host", None)):
        hosts.add(str(host))
    if smtp := getattr(service, "smtp_host", None):
        hosts.add(str(smtp))
    return {host.strip("[]") for host in hosts if host}


def _resolve(host: str) -> set[str]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return {str(info[4][0]) for info in infos}
    except (OSError, UnicodeError):
        return set()  # not resolvable now: nothing to refuse yet (checked again when sending)


def _check_target(service: NotifyBase, scheme: str) -> None:
    if private_targets_allowed():
        return
    for host in _hosts(service):
        addresses = {host} if _is_address(host) else _resolve(host)
        if host.lower().rstrip(".") == "localhost" or any(_private(a) for a in addresses):
            raise ValueError(
                f"this {scheme}:// URL points at a loopback, link-local or private address; "
                f"set {PRIVATE_ENV}=1 if that is intended"
            )


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def services(url: str) -> list[NotifyBase]:
    """The services Apprise makes of ``url``, split and parsed exactly as Apprise does when it
    sends; ValueError when any one is not allowed. Error messages name the scheme at most,
    never the URL: it may hold a password or token."""
    parts: list[str] = parse_urls(url)  # type: ignore[no-untyped-call]
    if not parts:
        raise ValueError("not an Apprise URL (expected scheme://...)")
    found = []
    for part in parts:
        scheme, separator, _ = part.partition("://")
        scheme = scheme.lower()
        if not separator or not scheme:
            raise ValueError("not an Apprise URL (expected scheme://...)")
        if scheme not in allowed_schemes():
            raise ValueError(f"the '{scheme}' scheme is not allowed for caregivers")
        # The plugin Apprise picks is the one for the schema IT parses: that must be the one
        # allowed (no second reading of the same text).
        details: dict[str, object] | None = url_to_dict(part)  # type: ignore[no-untyped-call]
        service = apprise.Apprise.instantiate(part)
        if details is None or service is None:
            raise ValueError(f"Apprise rejects this {scheme}:// URL; check its format")
        if str(details.get("schema", "")).lower() != scheme:
            raise ValueError(f"Apprise reads this {scheme}:// URL differently; check its format")
        _check_target(service, scheme)
        found.append(service)
    return found


def validate_apprise_url(url: str) -> str:
    """The URL if every service in it is allowed (see :func:`services`); ValueError otherwise."""
    services(url.strip())
    return url.strip()


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one send went (no URL in it)."""

    ok: bool
    detail: str


async def deliver(url: str, title: str, body: str, markdown: bool = False) -> Delivery:
    """Send one message; Apprise 2 answers with an AppriseResult, never None."""
    try:
        # Checked again when sending: the allowlist or a name's address may have changed.
        found = await asyncio.to_thread(services, url)
    except ValueError as err:
        return Delivery(False, f"the stored URL is refused now: {err}")
    notifier = apprise.Apprise()
    for service in found:
        notifier.add(service)
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
