"""The relay client sorts every answer into what the pusher must do; against a loopback stub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from unittest.mock import patch

from aiohttp import ClientSession, ClientTimeout
import pytest

from custom_components.hpoll import relay_client
from custom_components.hpoll.relay_client import (
    RelayClient,
    RelayRateLimitedError,
    RelayReportRejectedError,
    RelayTokenRejectedError,
    RelayUnreachableError,
    normalize_url,
)
from tests.http_stub import StubServer

REPORTS = "/api/v1/reports"


@pytest.fixture
async def stub(socket_enabled: None) -> AsyncIterator[StubServer]:
    server = StubServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def client(stub: StubServer) -> AsyncIterator[RelayClient]:
    async with ClientSession() as session:
        yield RelayClient(session, stub.url, "secret-token")


async def test_posts_json_with_the_token(stub: StubServer, client: RelayClient) -> None:
    stub.add("POST", REPORTS, status=202, payload={"status": "stored"})
    stub.add("POST", REPORTS, status=200, payload={"status": "duplicate"})
    await client.post_report(b'{"report_id": "r1"}')
    await client.post_report(b'{"report_id": "r1"}')
    assert stub.requests[0].headers["Authorization"] == "Bearer secret-token"
    assert stub.requests[0].headers["Content-Type"] == "application/json"
    assert stub.requests[1].json == {"report_id": "r1"}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, RelayTokenRejectedError),
        (403, RelayTokenRejectedError),
        (400, RelayReportRejectedError),
        (413, RelayReportRejectedError),
        (422, RelayReportRejectedError),
        (404, RelayUnreachableError),
        (500, RelayUnreachableError),
        (503, RelayUnreachableError),
    ],
)
async def test_every_status_has_one_meaning(
    stub: StubServer, client: RelayClient, status: int, error: type[Exception]
) -> None:
    stub.add("POST", REPORTS, status=status, payload={"detail": "the relay says why"})
    with pytest.raises(error, match=f"HTTP {status}: the relay says why"):
        await client.post_report(b"{}")


async def test_reason_without_a_problem_body(stub: StubServer, client: RelayClient) -> None:
    stub.add("POST", REPORTS, status=502, body=b"<html>Bad gateway</html>")
    with pytest.raises(RelayUnreachableError) as caught:
        await client.post_report(b"{}")
    assert caught.value.reason == "HTTP 502"


@pytest.mark.parametrize(
    ("header", "expected"),
    [({"Retry-After": "30"}, 30.0), ({"Retry-After": "soon"}, None), ({}, None)],
)
async def test_retry_after(
    stub: StubServer, client: RelayClient, header: dict[str, str], expected: float | None
) -> None:
    stub.add("POST", REPORTS, status=429, payload={}, headers=header)
    with pytest.raises(RelayRateLimitedError) as caught:
        await client.post_report(b"{}")
    assert caught.value.retry_after == expected


async def test_no_answer_in_time(stub: StubServer, client: RelayClient) -> None:
    stub.add("POST", REPORTS, status=202, payload={}, delay=1.0)
    with (
        patch.object(relay_client, "REQUEST_TIMEOUT", ClientTimeout(total=0.1)),
        pytest.raises(RelayUnreachableError, match="no answer within 0 s"),
    ):
        await client.post_report(b"{}")


async def test_something_else_at_that_address(stub: StubServer, client: RelayClient) -> None:
    stub.add("GET", "/api/v1/home", status=200, payload={"hello": "world"})
    with pytest.raises(RelayUnreachableError, match="does not answer like an hpoll relay"):
        await client.own_home()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://relay.example/", "https://relay.example"),
        (" http://10.0.0.2:8088 ", "http://10.0.0.2:8088"),
        ("https://relay.example/hpoll/", "https://relay.example/hpoll"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize(
    "url", ["relay.example", "file:///etc/passwd", "https://", "https://u:p@relay", "http://r/?a=1"]
)
def test_normalize_url_refuses(url: str) -> None:
    with pytest.raises(ValueError, match="relay URL"):
        normalize_url(url)
