"""Sending through Apprise, with the caregiver's URL kept out of every message and log."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
import ipaddress
import os
import socket

import apprise
from apprise import NotifyBase, NotifyFormat
from apprise.plugins import url_to_dict
from apprise.plugins.email import NotifyEmail
from apprise.utils.parse import parse_urls

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


def _check_timing(service: NotifyBase, scheme: str) -> None:
    """A URL's own timeouts and retries (``cto``, ``rto``, ``retry``, ``wait``) may not make a
    send outlast :data:`SEND_TIMEOUT`: the relay would stop waiting, and the send would hold one
    of the dispatcher's threads on (Apprise's defaults: 4 s to connect, 4 s a read, no retry)."""
    retries = int(getattr(service, "retry", 0) or 0)
    attempt = float(getattr(service, "socket_connect_timeout", 0) or 0) + float(
        getattr(service, "socket_read_timeout", 0) or 0
    )
    worst = (retries + 1) * attempt + retries * float(getattr(service, "wait", 0) or 0)
    if worst > SEND_TIMEOUT:
        raise ValueError(
            f"this {scheme}:// URL's timeouts and retries allow a send of {worst:.0f} s; "
            f"at most {SEND_TIMEOUT:.0f} s (the relay retries failed messages itself)"
        )


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def services(url: str, asset: apprise.AppriseAsset | None = None) -> list[NotifyBase]:
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
        service = apprise.Apprise.instantiate(part, asset=asset)
        if details is None or service is None:
            raise ValueError(f"Apprise rejects this {scheme}:// URL; check its format")
        if str(details.get("schema", "")).lower() != scheme:
            raise ValueError(f"Apprise reads this {scheme}:// URL differently; check its format")
        _check_target(service, scheme)
        _check_timing(service, scheme)
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


#: Who the messages come from (the e-mail "From" name, and services that show a sender), and
#: how Apprise sends: in the thread that asks, one service of a URL after another
#: (``async_mode`` off, no ``service_timeout``). With either, Apprise hands each send to its own
#: process-wide pool, sized by the machine (the CPUs + 4: six threads on two cores) and shared
#: by every send: the dispatcher's 32 concurrent sends were six, 27 messages/s to a service that
#: answers in 200 ms. The threads are the caller's (the dispatcher's pool, ``concurrency``
#: wide); a URL's connect and read timeouts and retries may add up to :data:`SEND_TIMEOUT` at
#: most (:func:`services` refuses more), and the relay waits that long for a send.
SENDER = apprise.AppriseAsset(
    app_id="hpoll",
    app_desc="hpoll: watching over a home from afar",
    async_mode=False,
    service_timeout=0,
)
#: A send still unanswered after this long (seconds) counts as failed (retried later); its
#: thread is left to finish (a running send cannot be stopped; Apprise's own limit did the same).
#: A dispatch batch of 200 at 32 at a time then lasts 7 x 30 s at most, inside its claim
#: (``outbox.CLAIM_FOR``, 5 minutes): no other replica takes its messages while they are sent.
SEND_TIMEOUT = 30.0


def service_format(service: NotifyBase) -> Format:
    """How to write for a service, from the format it renders (Apprise's ``resolve_format``:
    the URL's ``?format=``, else the service's native one): e-mail in HTML gets an HTML layout
    (Apprise adds its plain-text part); Markdown, or HTML that Apprise converts Markdown into
    (Telegram), gets Markdown; everything else (webhooks, SMS, push) plain text."""
    native = service.resolve_format()
    if native == NotifyFormat.HTML and isinstance(service, NotifyEmail):
        return "email"
    if native in (NotifyFormat.MARKDOWN, NotifyFormat.HTML):
        return "markdown"
    return "plain"


def _name_the_sender(service: NotifyEmail) -> None:
    """E-mail comes from "hpoll <address>" unless the URL names its sender (``from=Name
    <address>``); Apprise leaves the name empty when ``from=`` gives an address only."""
    name, address = service.from_addr
    if not name:
        service.from_addr = [SENDER.app_id, address]
        service.names[address] = SENDER.app_id


_BODY_FORMAT: dict[Format, NotifyFormat] = {
    "email": NotifyFormat.HTML,
    "markdown": NotifyFormat.MARKDOWN,
    "plain": NotifyFormat.TEXT,
}


async def deliver(url: str, document: Document, pool: Executor | None = None) -> Delivery:
    """Send one message to every service of a URL (:func:`deliver_now`) in a thread of ``pool``
    (default: the event loop's), waiting at most :data:`SEND_TIMEOUT`."""
    sending = asyncio.get_running_loop().run_in_executor(pool, deliver_now, url, document)
    try:
        return await asyncio.wait_for(sending, SEND_TIMEOUT)
    except TimeoutError:
        return Delivery(False, f"no answer within {SEND_TIMEOUT:.0f} s")


def deliver_now(url: str, document: Document) -> Delivery:
    """Send one message to every service of a URL, each written in its own format, in this
    thread (blocking); Apprise 2 answers with an AppriseResult, never None."""
    try:
        # Checked again when sending: the allowlist or a name's address may have changed.
        found = services(url, SENDER)
    except ValueError as err:
        return Delivery(False, f"the stored URL is refused now: {err}")
    by_format: dict[Format, list[NotifyBase]] = {}
    for service in found:
        if isinstance(service, NotifyEmail):
            _name_the_sender(service)
        by_format.setdefault(service_format(service), []).append(service)
    succeeded, failed, names = 0, 0, []
    for form, group in by_format.items():
        notifier = apprise.Apprise(asset=SENDER)
        for service in group:
            notifier.add(service)
        result = notifier.notify(
            title=title_for(document, form),
            body=render(document, form),
            body_format=_BODY_FORMAT[form],
        )
        succeeded += result.success_count
        failed += result.failed_count
        names += [r.name for r in result.results]
    if succeeded > 0 and failed == 0:
        return Delivery(True, f"delivered via {', '.join(names)}")
    return Delivery(False, f"{failed} of {len(names)} services failed ({', '.join(names)})")
