"""Resource endpoints, failure modes and the command line of the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
import json
from pathlib import Path
import socket

from aiohttp import ClientSession
import pytest

from huesim.__main__ import _parse_args, _serve, main
from huesim.server import load_fixture
from tests.conftest import APP_KEY, RunningCloud


@pytest.fixture
async def http(hue_cloud: RunningCloud) -> AsyncIterator[tuple[ClientSession, dict[str, str]]]:
    token = hue_cloud.issue_tokens()["access_token"]
    async with ClientSession(base_url=hue_cloud.base_url) as session:
        yield session, {"Authorization": f"Bearer {token}", "hue-application-key": APP_KEY}


async def test_full_listing_in_the_envelope(
    hue_cloud: RunningCloud, http: tuple[ClientSession, dict[str, str]]
) -> None:
    session, headers = http
    async with session.get("/route/clip/v2/resource", headers=headers) as response:
        body = await response.json()
    assert body["errors"] == []
    assert len(body["data"]) == 166
    async with session.get("/route/clip/v2/resource/motion", headers=headers) as response:
        motions = (await response.json())["data"]
    assert {r["type"] for r in motions} == {"motion"}
    rid = motions[0]["id"]
    async with session.get(f"/route/clip/v2/resource/motion/{rid}", headers=headers) as response:
        assert [r["id"] for r in (await response.json())["data"]] == [rid]
    async with session.get("/route/clip/v2/resource/motion/nope", headers=headers) as response:
        assert response.status == 404
    assert hue_cloud.sim.requests["GET /route/clip/v2/resource"] == 1


async def test_unknown_app_key(http: tuple[ClientSession, dict[str, str]]) -> None:
    session, headers = http
    async with session.get(
        "/route/clip/v2/resource", headers={**headers, "hue-application-key": "x"}
    ) as response:
        assert response.status == 403
        assert (await response.json())["errors"][0]["description"] == "unauthorized user"


async def test_rate_limit_burst(
    hue_cloud: RunningCloud, http: tuple[ClientSession, dict[str, str]]
) -> None:
    session, headers = http
    hue_cloud.sim.world.rate_limit(2, retry_after=30)
    for _ in range(2):
        async with session.get("/route/clip/v2/resource", headers=headers) as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "30"
    async with session.get("/route/clip/v2/resource", headers=headers) as response:
        assert response.status == 200
    hue_cloud.sim.world.rate_limit(1)
    async with session.get("/route/clip/v2/resource", headers=headers) as response:
        assert response.status == 429
        assert "Retry-After" not in response.headers


async def test_bridge_offline_window(
    hue_cloud: RunningCloud, http: tuple[ClientSession, dict[str, str]]
) -> None:
    session, headers = http
    now = hue_cloud.clock.now()
    hue_cloud.sim.world.bridge_offline(now, now + timedelta(minutes=5))
    for path in ("/route/clip/v2/resource", "/route/api/0/config"):
        async with session.get(path, headers=headers) as response:
            assert response.status == 503
    hue_cloud.clock.advance(300)
    async with session.get("/route/clip/v2/resource", headers=headers) as response:
        assert response.status == 200


async def test_eventstream_is_not_offered(http: tuple[ClientSession, dict[str, str]]) -> None:
    session, headers = http
    async with session.get("/route/clip/v2/eventstream", headers=headers) as response:
        assert response.status == 404


def test_fixture_loader_accepts_both_shapes(tmp_path: Path) -> None:
    enveloped = tmp_path / "e.json"
    enveloped.write_text(json.dumps({"errors": [], "data": [{"id": "a", "type": "x"}]}))
    assert load_fixture(enveloped) == [{"id": "a", "type": "x"}]
    broken = tmp_path / "b.json"
    broken.write_text(json.dumps({"data": {}}))
    with pytest.raises(TypeError, match="no resource list"):
        load_fixture(broken)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_command_line_serves_until_cancelled(
    socket_enabled: None, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    args = _parse_args(["--port", str(port), "--lively", "--seed", "3", "--client-secret", "s"])
    task = asyncio.create_task(_serve(args))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if "application key" in capsys.readouterr().out + "":
            break
    async with (
        ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/route/api/0/config") as response,
    ):
        assert response.status == 401
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_main_handles_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(coro: object) -> None:
        coro.close()  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(asyncio, "run", interrupted)
    main(["--port", "1"])
