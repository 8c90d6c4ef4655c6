"""Async client of the Hue Remote API: one call per question, typed answers, typed errors.

The caller injects the aiohttp session and a coroutine that returns a valid access token (in
Home Assistant: the OAuth2 session, which refreshes and persists rotating refresh tokens). The
client holds no retry loop: every failure is raised as a :mod:`.errors` type for the caller to act
on. Tokens and application keys never appear in messages or logs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
import json
import logging
from typing import Any

import aiohttp

from .const import (
    CONFIG_PATH,
    DEFAULT_BASE_URL,
    LINK_PATH,
    MAX_RESPONSE_BYTES,
    REQUEST_TIMEOUT_SECONDS,
    RESOURCE_PATH,
)
from .errors import (
    HueAppKeyError,
    HueAuthError,
    HueBridgeOfflineError,
    HueConnectionError,
    HueLinkError,
    HueRateLimitedError,
    HueResponseError,
)
from .models import Snapshot
from .parser import parse_snapshot

_LOGGER = logging.getLogger(__name__)

type TokenProvider = Callable[[], Awaitable[str]]

#: CLIP v1 error type the bridge answers when the link button was not pressed.
LINK_BUTTON_NOT_PRESSED = 101


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    """The bridge's public configuration (``GET /route/api/0/config``)."""

    bridge_id: str
    name: str
    model_id: str | None
    software_version: str | None
    api_version: str | None


class HueRemoteClient:
    """Talks to one bridge through ``api.meethue.com`` (or a compatible base URL)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        token_provider: TokenProvider,
        app_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        token_refresher: TokenProvider | None = None,
    ) -> None:
        """``token_refresher`` gets a new access token now (refresh grant), for a token the
        cloud calls expired before its stated lifetime; without it that is an auth error."""
        self._session = session
        self._token_provider = token_provider
        self._token_refresher = token_refresher
        self._app_key = app_key
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    @property
    def app_key(self) -> str | None:
        """The bridge application key in use (None until linked)."""
        return self._app_key

    async def get_resources(self) -> Snapshot:
        """Fetch every resource of the bridge in ONE request and parse it."""
        payload = await self._request("GET", RESOURCE_PATH, app_key_required=True)
        return parse_snapshot(payload)

    async def get_bridge_config(self) -> BridgeConfig:
        """The bridge's id and name; needs only the access token."""
        payload = await self._request("GET", CONFIG_PATH)
        if not isinstance(payload, dict):
            raise HueResponseError("bridge config is not a JSON object")
        bridge_id = payload.get("bridgeid")
        if not isinstance(bridge_id, str) or not bridge_id:
            raise HueResponseError("bridge config has no 'bridgeid'")
        name = payload.get("name")
        return BridgeConfig(
            bridge_id=bridge_id.lower(),
            name=name if isinstance(name, str) and name else "Hue Bridge",
            model_id=_optional_str(payload.get("modelid")),
            software_version=_optional_str(payload.get("swversion")),
            api_version=_optional_str(payload.get("apiversion")),
        )

    async def create_app_key(self, devicetype: str) -> str:
        """Press the link button virtually and create an application key, back to back.

        The virtual press only lasts a moment, so both calls are made without a pause. On success
        the client uses the new key for later calls.
        """
        pressed = await self._request("PUT", CONFIG_PATH, json_body={"linkbutton": True})
        _raise_v1_error(pressed, "pressing the link button")
        created = await self._request("POST", LINK_PATH, json_body={"devicetype": devicetype})
        _raise_v1_error(created, "creating the application key")
        key = _v1_success(created).get("username")
        if not isinstance(key, str) or not key:
            raise HueLinkError("the bridge did not return an application key")
        self._app_key = key
        return key

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        app_key_required: bool = False,
    ) -> object:
        try:
            return await self._request_once(
                method, path, await self._token_provider(), json_body, app_key_required
            )
        except HueAuthError as err:
            # Hue sometimes ends an access token before its stated lifetime: one refresh and
            # one retry, before the user is asked to sign in again.
            if self._token_refresher is None or not str(err).endswith(TOKEN_EXPIRED):
                raise
            token = await self._token_refresher()
        return await self._request_once(method, path, token, json_body, app_key_required)

    async def _request_once(
        self,
        method: str,
        path: str,
        token: str,
        json_body: dict[str, Any] | None,
        app_key_required: bool,
    ) -> object:
        headers = {"Authorization": f"Bearer {token}"}
        if app_key_required:
            if not self._app_key:
                raise HueAppKeyError("no application key: link the bridge first")
            headers["hue-application-key"] = self._app_key
        url = f"{self._base_url}{path}"
        try:
            async with self._session.request(
                method, url, headers=headers, json=json_body, timeout=self._timeout
            ) as response:
                body = await _read_limited(response)
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except TimeoutError as err:
            raise HueConnectionError(f"{method} {path} timed out") from err
        except aiohttp.ClientError as err:
            raise HueConnectionError(f"{method} {path} failed: {type(err).__name__}") from err

        if status >= 400:
            raise _error_for_status(status, body, retry_after, path)
        try:
            return json.loads(body)
        except (UnicodeDecodeError, ValueError) as err:
            raise HueResponseError(f"{method} {path} returned invalid JSON") from err


async def _read_limited(response: aiohttp.ClientResponse) -> bytes:
    declared = response.content_length
    if declared is not None and declared > MAX_RESPONSE_BYTES:
        raise HueResponseError(f"response of {declared} bytes exceeds the limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise HueResponseError("response exceeds the size limit")
        chunks.append(chunk)
    return b"".join(chunks)


#: The cloud's reason for an access token past its (possibly early) end.
TOKEN_EXPIRED = "access_token_expired"  # noqa: S105 - an error reason, not a secret


def _error_for_status(status: int, body: bytes, retry_after: str | None, path: str) -> Exception:
    reason = _error_reason(body)
    detail = f"HTTP {status} from {path}" + (f": {reason}" if reason else "")
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return HueRateLimitedError(parse_retry_after(retry_after))
    if status in (HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.GATEWAY_TIMEOUT):
        return HueBridgeOfflineError(detail)
    if status == HTTPStatus.FORBIDDEN and reason == "unauthorized user":
        # CLIP v2's answer to an application key the bridge no longer knows.
        return HueAppKeyError(detail)
    if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
        return HueAuthError(detail)
    if status >= 500:
        return HueConnectionError(detail)
    return HueResponseError(detail)


def _error_reason(body: bytes) -> str | None:
    """The machine-readable reason in an error body, if there is one.

    Hue's cloud answers in two dialects: Apigee faults (``fault.detail.errorcode``, e.g.
    ``keymanagement.service.access_token_expired``) and CLIP v2 envelopes
    (``errors[].description``).
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    fault = payload.get("fault")
    if isinstance(fault, dict):
        detail = fault.get("detail")
        code = detail.get("errorcode") if isinstance(detail, dict) else None
        return code if isinstance(code, str) else _optional_str(fault.get("faultstring"))
    errors = payload.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return _optional_str(errors[0].get("description"))
    return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _v1_success(payload: object) -> dict[str, Any]:
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        success = payload[0].get("success")
        if isinstance(success, dict):
            return success
    return {}


def _raise_v1_error(payload: object, action: str) -> None:
    """CLIP v1 answers 200 with ``[{"error": {...}}]`` when a request fails."""
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], dict):
        raise HueResponseError(f"unexpected answer when {action}")
    error = payload[0].get("error")
    if isinstance(error, dict):
        description = _optional_str(error.get("description")) or "unknown error"
        if error.get("type") == LINK_BUTTON_NOT_PRESSED:
            raise HueLinkError(f"the bridge refused the link ({description})")
        raise HueLinkError(f"{action} failed: {description}")
    if "success" not in payload[0]:
        raise HueResponseError(f"unexpected answer when {action}")


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
