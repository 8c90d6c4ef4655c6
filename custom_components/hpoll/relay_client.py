"""The hpoll relay's HTTP API as the integration uses it: check a token, post a report.

Every answer is sorted into what the pusher must do next, so no status code is handled in two
places: success, stop (token rejected), drop (the report itself is refused), or retry later.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout

#: A relay answering slower than this is treated as unreachable for this attempt.
REQUEST_TIMEOUT = ClientTimeout(total=30)
REPORTS_PATH = "/api/v1/reports"
OWN_HOME_PATH = "/api/v1/home"


class RelayError(Exception):
    """Base of every relay failure; ``reason`` is short, safe to log and to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RelayUnreachableError(RelayError):
    """No answer (DNS, refused, timeout) or an answer that says "try later" (5xx, 404)."""


class RelayTokenRejectedError(RelayError):
    """401 or 403: retrying cannot help until someone enters a valid token."""


class RelayReportRejectedError(RelayError):
    """400, 413 or 422: this report will never be accepted (a poison report)."""


class RelayRateLimitedError(RelayError):
    """429: come back after ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RelayHome:
    """The home a token belongs to, as the relay knows it."""

    id: str
    name: str
    timezone: str


def normalize_url(url: str) -> str:
    """``https://relay.example/`` -> ``https://relay.example``; ValueError when not http(s)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the relay URL must start with http:// or https:// and name a host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("the relay URL must not carry credentials, a query or a fragment")
    return url.rstrip("/")


def _retry_after(response: ClientResponse) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


async def _reason(response: ClientResponse) -> str:
    """The relay's own words (its problem ``detail``), bounded; never the request."""
    try:
        body: Any = await response.json(content_type=None)
    except (ClientError, ValueError):
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    text = f"HTTP {response.status}"
    if isinstance(detail, str) and detail:
        text += f": {detail[:300]}"
    return text


class RelayClient:
    """One relay, one home token."""

    def __init__(self, session: ClientSession, url: str, token: str) -> None:
        """``url`` as normalized by :func:`normalize_url`."""
        self._session = session
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"}

    async def _request(self, method: str, path: str, body: bytes | None = None) -> Any:
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method, self._url + path, data=body, headers=headers, timeout=REQUEST_TIMEOUT
            ) as response:
                if response.status in (200, 201, 202):
                    return await response.json(content_type=None)
                reason = await _reason(response)
                if response.status in (401, 403):
                    raise RelayTokenRejectedError(reason)
                if response.status in (400, 413, 422):
                    raise RelayReportRejectedError(reason)
                if response.status == 429:
                    raise RelayRateLimitedError(reason, _retry_after(response))
                raise RelayUnreachableError(reason)
        except TimeoutError as err:
            raise RelayUnreachableError(f"no answer within {REQUEST_TIMEOUT.total:.0f} s") from err
        except (ClientError, asyncio.IncompleteReadError, ValueError) as err:
            raise RelayUnreachableError(f"cannot reach the relay ({type(err).__name__})") from err

    async def own_home(self) -> RelayHome:
        """Which home this token is for (the options flow checks the token with it)."""
        body = await self._request("GET", OWN_HOME_PATH)
        try:
            return RelayHome(str(body["id"]), str(body["name"]), str(body["timezone"]))
        except (KeyError, TypeError) as err:
            raise RelayUnreachableError("this URL does not answer like an hpoll relay") from err

    async def post_report(self, body: bytes) -> None:
        """Deliver one report (already JSON); a repeated report_id is success too."""
        await self._request("POST", REPORTS_PATH, body)
