"""Fixtures shared by the Home Assistant and the relay/simulator test runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
import pytest

from huesim import HueCloudSimulator, ManualClock, create_app

FIXTURES = Path(__file__).parent / "fixtures"
CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
APP_KEY = "0123456789abcdef0123456789abcdef01234567"


def load_resources() -> list[dict[str, Any]]:
    """The captured CLIP v2 resource list (a fresh copy every call)."""
    data: list[dict[str, Any]] = json.loads((FIXTURES / "clip_v2_resources.json").read_text())
    return data


@pytest.fixture(autouse=True)
def _allow_private_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test sinks listen on 127.0.0.1: allowed, as an operator would allow a LAN service
    (tests of the refusal remove it)."""
    monkeypatch.setenv("HPOLL_RELAY_ALLOW_PRIVATE_TARGETS", "1")


@pytest.fixture
def resources() -> list[dict[str, Any]]:
    """The captured resource list."""
    return load_resources()


@pytest.fixture
def envelope(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The captured resource list as the API wraps it."""
    return {"errors": [], "data": resources}


@dataclass
class RunningCloud:
    """A simulated Hue cloud listening on loopback."""

    sim: HueCloudSimulator
    clock: ManualClock
    base_url: str
    server: TestServer

    def issue_tokens(self) -> dict[str, object]:
        """Tokens as if the OAuth flow had just completed."""
        return self.sim.oauth.issue_for_tests(CLIENT_ID)


@pytest.fixture
async def hue_cloud(socket_enabled: None) -> AsyncIterator[RunningCloud]:
    """The Hue cloud simulator on 127.0.0.1, with a manual clock.

    ``socket_enabled`` lifts the HA harness's socket block; it still allows loopback only.
    """
    # Starts at the real time, so the bridge's and Home Assistant's days agree.
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    sim = HueCloudSimulator.from_fixture(
        clock, clients={CLIENT_ID: CLIENT_SECRET}, app_keys={APP_KEY}
    )
    # No access log: aiohttp's access logger cannot format times under freezegun.
    server = TestServer(create_app(sim), host="127.0.0.1", access_log=None)
    await server.start_server()
    try:
        yield RunningCloud(sim, clock, str(server.make_url("")).rstrip("/"), server)
    finally:
        await server.close()
