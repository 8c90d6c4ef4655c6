"""HueRemoteClient: every error path with a mocked HTTP layer, and no secret in any message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
import re
from typing import Any

from aiohttp import ClientSession
import pytest

from custom_components.hpoll.hue import (
    HueAppKeyError,
    HueAuthError,
    HueBridgeOfflineError,
    HueConnectionError,
    HueError,
    HueLinkError,
    HueRateLimitedError,
    HueRemoteClient,
    HueResponseError,
    parse_retry_after,
)
from custom_components.hpoll.hue.const import MAX_RESPONSE_BYTES
from tests.http_stub import StubServer

RESOURCES = "/route/clip/v2/resource"
CONFIG = "/route/api/0/config"
LINK = "/route/api"
TOKEN = "secret-access-token"
KEY = "secret-app-key"


@pytest.fixture
async def session() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


@pytest.fixture
async def http(socket_enabled: None) -> AsyncIterator[StubServer]:
    server = StubServer()
    await server.start()
    yield server
    await server.close()


async def _token() -> str:
    return TOKEN


@pytest.fixture
def client(session: ClientSession, http: StubServer) -> HueRemoteClient:
    return HueRemoteClient(session, _token, KEY, base_url=f"{http.url}/", timeout=2)


async def test_get_resources_sends_token_and_key(
    client: HueRemoteClient, http: StubServer, envelope: dict[str, Any]
) -> None:
    http.add("GET", RESOURCES, payload=envelope)
    snapshot = await client.get_resources()
    assert len(snapshot.devices) == 46
    (request,) = http.requests
    assert request.path == RESOURCES
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["hue-application-key"] == KEY


def _fault(code: str) -> dict[str, Any]:
    return {"fault": {"faultstring": "Invalid Access Token", "detail": {"errorcode": code}}}


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "text"),
    [
        (401, _fault("keymanagement.service.access_token_expired"), {}, HueAuthError, "expired"),
        (401, {"fault": {"faultstring": "Invalid token"}}, {}, HueAuthError, "Invalid token"),
        (401, "not json", {}, HueAuthError, "HTTP 401"),
        (
            403,
            {"errors": [{"description": "unauthorized user"}], "data": []},
            {},
            HueAppKeyError,
            "unauthorized user",
        ),
        (403, {"errors": [{"description": "forbidden"}]}, {}, HueAuthError, "forbidden"),
        (429, {}, {"Retry-After": "42"}, HueRateLimitedError, "42 s"),
        (429, {}, {}, HueRateLimitedError, "rate limit"),
        (
            503,
            {"errors": [{"description": "bridge is not connected"}]},
            {},
            HueBridgeOfflineError,
            "not connected",
        ),
        (504, "", {}, HueBridgeOfflineError, "HTTP 504"),
        (500, [], {}, HueConnectionError, "HTTP 500"),
        (502, "", {}, HueConnectionError, "HTTP 502"),
        (404, {"errors": [{"description": "Not Found"}]}, {}, HueResponseError, "Not Found"),
    ],
)
async def test_http_errors_map_to_typed_errors(
    client: HueRemoteClient,
    http: StubServer,
    status: int,
    body: Any,
    headers: dict[str, str],
    error: type[HueError],
    text: str,
) -> None:
    if isinstance(body, str):
        http.add("GET", RESOURCES, status=status, body=body.encode(), headers=headers)
    else:
        http.add("GET", RESOURCES, status=status, payload=body, headers=headers)
    with pytest.raises(error, match=re.escape(text)) as caught:
        await client.get_resources()
    assert type(caught.value) is error
    assert TOKEN not in str(caught.value)
    assert KEY not in str(caught.value)


async def test_rate_limit_retry_after(client: HueRemoteClient, http: StubServer) -> None:
    http.add("GET", RESOURCES, status=429, headers={"Retry-After": "7"})
    http.add("GET", RESOURCES, status=429)
    with pytest.raises(HueRateLimitedError) as first:
        await client.get_resources()
    assert first.value.retry_after == 7
    with pytest.raises(HueRateLimitedError) as second:
        await client.get_resources()
    assert second.value.retry_after is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        ("Wed, 01 Jul 2026 10:00:30 GMT", 30.0),
        ("Wed, 01 Jul 2026 09:59:00 GMT", 0.0),
        ("soon", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert parse_retry_after(header, now) == expected


async def test_timeout(session: ClientSession, http: StubServer) -> None:
    http.add("GET", RESOURCES, payload={}, delay=1.0)
    client = HueRemoteClient(session, _token, KEY, base_url=http.url, timeout=0.05)
    with pytest.raises(HueConnectionError, match="timed out"):
        await client.get_resources()


async def test_connection_refused(session: ClientSession, http: StubServer) -> None:
    url = http.url
    await http.close()
    client = HueRemoteClient(session, _token, KEY, base_url=url)
    with pytest.raises(HueConnectionError, match="ClientConnectorError"):
        await client.get_resources()


@pytest.mark.parametrize(
    "body", ["{not json", "\xff\xfe", '{"errors": [{"description": "busy"}], "data": []}']
)
async def test_malformed_bodies(client: HueRemoteClient, http: StubServer, body: str) -> None:
    http.add("GET", RESOURCES, body=body.encode("latin-1"))
    with pytest.raises(HueResponseError):
        await client.get_resources()


async def test_oversized_bodies_are_refused(client: HueRemoteClient, http: StubServer) -> None:
    http.add("GET", RESOURCES, body=b" " * (MAX_RESPONSE_BYTES + 10))
    with pytest.raises(HueResponseError, match="exceeds"):
        await client.get_resources()
    http.add("GET", RESOURCES, body=b" " * (MAX_RESPONSE_BYTES + 10), chunked=True)
    with pytest.raises(HueResponseError, match="exceeds"):
        await client.get_resources()


async def test_resources_need_an_app_key(session: ClientSession, http: StubServer) -> None:
    client = HueRemoteClient(session, _token, base_url=http.url)
    assert client.app_key is None
    with pytest.raises(HueAppKeyError, match="link the bridge"):
        await client.get_resources()
    assert not http.requests


async def test_token_provider_errors_propagate(session: ClientSession, http: StubServer) -> None:
    async def token() -> str:
        raise HueAuthError("refresh failed")

    with pytest.raises(HueAuthError, match="refresh failed"):
        await HueRemoteClient(session, token, KEY, base_url=http.url).get_resources()
    assert not http.requests


async def test_a_token_request_that_hangs_is_a_connection_error(
    session: ClientSession, http: StubServer
) -> None:
    # Home Assistant's session sets no timeout of its own: a token endpoint that never answers
    # must not hold the poll (and every later one) for minutes.
    async def hanging() -> str:
        await asyncio.sleep(3600)
        return TOKEN

    client = HueRemoteClient(session, hanging, KEY, base_url=http.url, timeout=0.05)
    with pytest.raises(HueConnectionError, match="token"):
        await client.get_resources()
    assert not http.requests


async def test_bridge_config(client: HueRemoteClient, http: StubServer) -> None:
    http.add(
        "GET",
        CONFIG,
        payload={
            "name": "Upstairs",
            "bridgeid": "001788FFFE123456",
            "modelid": "BSB002",
            "swversion": "1972004020",
            "apiversion": "1.72.0",
        },
    )
    config = await client.get_bridge_config()
    assert config.bridge_id == "001788fffe123456"
    assert config.name == "Upstairs"
    assert config.model_id == "BSB002"


@pytest.mark.parametrize(
    ("payload", "expected"), [([], "not a JSON object"), ({"name": "x"}, "no 'bridgeid'")]
)
async def test_bridge_config_malformed(
    client: HueRemoteClient, http: StubServer, payload: object, expected: str
) -> None:
    http.add("GET", CONFIG, payload=payload)
    with pytest.raises(HueResponseError, match=expected):
        await client.get_bridge_config()


async def test_bridge_config_defaults_name(client: HueRemoteClient, http: StubServer) -> None:
    http.add("GET", CONFIG, payload={"bridgeid": "ABC"})
    config = await client.get_bridge_config()
    assert (config.bridge_id, config.name, config.api_version) == ("abc", "Hue Bridge", None)


async def test_create_app_key(client: HueRemoteClient, http: StubServer) -> None:
    http.add("PUT", CONFIG, payload=[{"success": {"/config/linkbutton": True}}])
    http.add("POST", LINK, payload=[{"success": {"username": "new-key"}}])
    assert await client.create_app_key("hpoll#home") == "new-key"
    assert client.app_key == "new-key"
    assert [(r.method, r.path, r.json) for r in http.requests] == [
        ("PUT", CONFIG, {"linkbutton": True}),
        ("POST", LINK, {"devicetype": "hpoll#home"}),
    ]


@pytest.mark.parametrize(
    ("press", "create", "error", "text"),
    [
        (
            [{"success": {}}],
            [{"error": {"type": 101, "description": "link button not pressed"}}],
            HueLinkError,
            "refused the link",
        ),
        (
            [{"error": {"type": 1, "description": "unauthorized user"}}],
            None,
            HueLinkError,
            "pressing the link button failed",
        ),
        ([{"success": {}}], [{"error": {"type": 7}}], HueLinkError, "unknown error"),
        ([{"success": {}}], [{"success": {}}], HueLinkError, "did not return"),
        ({"unexpected": True}, None, HueResponseError, "unexpected answer"),
        ([{"success": {}}], [{"other": 1}], HueResponseError, "unexpected answer"),
    ],
)
async def test_create_app_key_failures(
    client: HueRemoteClient,
    http: StubServer,
    press: object,
    create: object,
    error: type[HueError],
    text: str,
) -> None:
    http.add("PUT", CONFIG, payload=press)
    if create is not None:
        http.add("POST", LINK, payload=create)
    with pytest.raises(error, match=text):
        await client.create_app_key("hpoll#home")
    assert client.app_key == KEY
