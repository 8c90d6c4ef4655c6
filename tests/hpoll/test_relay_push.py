"""The push to the relay, end to end: Home Assistant with hpoll on the simulated Hue cloud, and
the REAL relay (``python -m relay serve``, SQLite) in a child process on loopback.

Time only moves where a retry timer must fire (``async_fire_time_changed``); the relay judges
``sent_at`` by its own clock, so the reports' times stay real.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
import json
import logging
from typing import Any
import uuid

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.hpoll.const import (
    CONF_PUSH_INTERVAL,
    CONF_RELAY_HOME_ID,
    CONF_RELAY_TOKEN,
    CONF_RELAY_URL,
    DOMAIN,
    PUSH_RETRY_BASE,
    PUSH_RETRY_MAX,
)
from custom_components.hpoll.diagnostics import async_get_config_entry_diagnostics
from custom_components.hpoll.pusher import RelayPusher, token_issue_id
from tests.conftest import RunningCloud
from tests.hpoll.helpers import setup_with_options, state_of
from tests.http_stub import StubServer
from tests.relay.relay_process import free_port
from tests.relay_server import RelayServer

CONNECTION = "binary_sensor.hue_bridge_relay_connection"
QUEUE = "sensor.hue_bridge_relay_queue"
LAST_PUSH = "sensor.hue_bridge_last_push_to_relay"
SENSOR_DEVICE = "7bd86197-ef7c-7625-3170-1b6de1502441"  # a motion sensor in Room 1
EXAMPLE = "tests/fixtures/report_v1.json"


async def settle(hass: HomeAssistant) -> None:
    """Until every push in flight has its answer."""
    await hass.async_block_till_done(wait_background_tasks=True)


async def fire_retries(hass: HomeAssistant, seconds: float = PUSH_RETRY_MAX + 1) -> None:
    """Let scheduled retries run (the clock itself does not move)."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))
    await settle(hass)


def relay_at(url: str, token: str = "t", home_id: str = "h_1") -> dict[str, Any]:
    """Options naming a relay (as the options flow saves them once checked)."""
    return {
        CONF_RELAY_URL: url,
        CONF_RELAY_TOKEN: token,
        CONF_RELAY_HOME_ID: home_id,
        CONF_PUSH_INTERVAL: 60,
    }


def pusher_of(entry: MockConfigEntry) -> RelayPusher:
    pusher = entry.runtime_data.pusher
    assert pusher is not None
    return pusher


def waiting_ids(pusher: RelayPusher) -> list[str]:
    return [item.report["report_id"] for item in pusher.queue]


def someone_moves(cloud: RunningCloud) -> None:
    """Movement in Room 1, just now (the simulated bridge's clock catches up with ours)."""
    cloud.clock.advance((dt_util.utcnow() - cloud.clock.now()).total_seconds())
    cloud.sim.world.move(SENSOR_DEVICE)
    cloud.clock.advance(30)  # and is over by the next poll


async def stored_ids(hass: HomeAssistant, relay: RelayServer, home_id: str) -> list[str]:
    reports = await hass.async_add_executor_job(relay.stored_reports, home_id)
    return [report_id for report_id, _sent_at in reports]


@pytest.fixture
async def pushing_entry(
    hass: HomeAssistant,
    credentials: None,
    config_entry: MockConfigEntry,
    relay_options: dict[str, Any],
) -> MockConfigEntry:
    """The entry set up with a relay in its options; its first report delivered."""
    await setup_with_options(hass, config_entry, relay_options)
    await settle(hass)
    return config_entry


async def test_reports_arrive_and_are_queryable(
    hass: HomeAssistant,
    pushing_entry: MockConfigEntry,
    relay: RelayServer,
    relay_home: tuple[str, str],
    cloud_urls: RunningCloud,
) -> None:
    home_id, token = relay_home
    assert len(await stored_ids(hass, relay, home_id)) == 1  # the home reports itself at start
    assert state_of(hass, CONNECTION) == "on"
    assert state_of(hass, QUEUE) == "0"
    assert state_of(hass, LAST_PUSH) != "unknown"

    someone_moves(cloud_urls)
    await pushing_entry.runtime_data.coordinator.async_refresh()
    pusher_of(pushing_entry).async_queue_report()
    await settle(hass)

    assert len(await stored_ids(hass, relay, home_id)) == 2
    session = async_get_clientsession(hass)
    async with session.get(
        f"{relay.url}/api/v1/homes/{home_id}", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        status = await response.json()
    assert status["activity"]["last_at"] is not None
    assert status["bridge"]["reachable"] is True
    assert status["counters"]["polls"] == 2
    devices = {device["id"]: device for device in status["devices"]}
    assert devices[SENSOR_DEVICE]["room"] == "Room 1"
    assert devices["fc8a3caf-95aa-9c24-0eb2-22293a7f2618"]["battery_state"] == "low"


async def test_nothing_new_nothing_sent_until_the_heartbeat(
    hass: HomeAssistant, pushing_entry: MockConfigEntry, relay: RelayServer
) -> None:
    pusher = pusher_of(pushing_entry)
    pusher.async_queue_report()
    assert len(pusher.queue) == 0  # nothing changed since the report at start
    last = pusher._last_queued_at
    assert last is not None
    pusher._last_queued_at = last - timedelta(minutes=9, seconds=50)
    pusher.async_queue_report()
    assert len(pusher.queue) == 0
    pusher._last_queued_at = last - timedelta(minutes=10) + timedelta(seconds=1)
    pusher.async_queue_report()
    assert len(pusher.queue) == 1  # the heartbeat (a tick may come a hair early)
    await settle(hass)


async def test_relay_down_then_up_delivers_every_report_once_in_order(
    hass: HomeAssistant,
    pushing_entry: MockConfigEntry,
    relay: RelayServer,
    relay_home: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    home_id = relay_home[0]
    pusher = pusher_of(pushing_entry)
    await hass.async_add_executor_job(relay.stop)
    for _ in range(4):
        pusher.async_queue_report(force=True)
        await settle(hass)
    assert state_of(hass, CONNECTION) == "off"
    connection = hass.states.get(CONNECTION)
    assert connection is not None
    assert connection.attributes["problem"] == "unreachable"
    assert state_of(hass, QUEUE) == "4"
    assert caplog.text.count("Cannot deliver reports to the relay") == 1
    waiting = waiting_ids(pusher)

    await fire_retries(hass)  # still down: the report stays, nothing else happens
    assert waiting_ids(pusher) == waiting

    await hass.async_add_executor_job(relay.start)
    await fire_retries(hass)
    stored = await stored_ids(hass, relay, home_id)
    assert stored[1:] == waiting
    assert len(set(stored)) == len(stored) == 5
    assert state_of(hass, QUEUE) == "0"
    assert state_of(hass, CONNECTION) == "on"
    assert "The relay takes reports again" in caplog.text


async def test_waiting_reports_survive_a_restart(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    pushing_entry: MockConfigEntry,
    relay: RelayServer,
    relay_home: tuple[str, str],
    cloud_urls: RunningCloud,
) -> None:
    home_id = relay_home[0]
    pusher = pusher_of(pushing_entry)
    await hass.async_add_executor_job(relay.stop)
    pusher.async_queue_report(force=True)
    await settle(hass)
    # Activity seen after the last report is not lost when HA goes down before the next one.
    someone_moves(cloud_urls)
    await pushing_entry.runtime_data.coordinator.async_refresh()
    waiting = waiting_ids(pusher)

    assert await hass.config_entries.async_unload(pushing_entry.entry_id)
    stored = hass_storage[f"{DOMAIN}.{pushing_entry.entry_id}.relay_queue"]["data"]
    assert [r["report"]["report_id"] for r in stored["reports"]][:1] == waiting
    assert len(stored["reports"]) == 2
    assert stored["reports"][1]["report"]["activity"]

    await hass.async_add_executor_job(relay.start)
    assert await hass.config_entries.async_setup(pushing_entry.entry_id)
    await settle(hass)
    received = await stored_ids(hass, relay, home_id)
    assert received[1:3] == [r["report"]["report_id"] for r in stored["reports"]]
    assert len(received) == len(set(received)) == 4  # + the report at each start
    assert len(pusher_of(pushing_entry).queue) == 0


def _example(**changes: Any) -> dict[str, Any]:
    with open(EXAMPLE, encoding="utf-8") as file:
        report: dict[str, Any] = json.load(file)
    report["report_id"] = str(uuid.uuid4())
    report["sent_at"] = dt_util.utcnow().isoformat()
    report.update(changes)
    return report


async def test_a_refused_report_is_dropped_and_the_queue_moves_on(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    credentials: None,
    config_entry: MockConfigEntry,
    relay: RelayServer,
    relay_home: tuple[str, str],
    relay_options: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What a previous run left in the Store: a poison report (battery 300 %) before a good
    one. The poison must not block the good one behind it."""
    home_id = relay_home[0]
    poison = _example(home_id=home_id)
    poison["devices"][0]["battery"] = 300
    good = _example(home_id=home_id)
    key = f"{DOMAIN}.{config_entry.entry_id}.relay_queue"
    hass_storage[key] = {
        "version": 1,
        "minor_version": 1,
        "key": key,
        "data": {
            "reports": [{"report": poison, "attempts": 0}, {"report": good, "attempts": 1}],
            "counters": {"reports_delivered": 7},
        },
    }
    await setup_with_options(hass, config_entry, relay_options)
    await settle(hass)
    received = await stored_ids(hass, relay, home_id)
    assert received[0] == good["report_id"]
    assert poison["report_id"] not in received
    assert f"refused report {poison['report_id']} for good" in caplog.text
    assert "devices.0.battery" in caplog.text  # the relay's reason, in its own words
    queue = hass.states.get(QUEUE)
    assert queue is not None
    assert queue.state == "0"
    assert queue.attributes["reports_rejected"] == 1
    assert pusher_of(config_entry).queue.counters["reports_delivered"] == 9


class LosingProxy:
    """Forwards to the relay, but the first report's answer never reaches the sender."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.report_ids: list[str] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.server = TestServer(app, host="127.0.0.1")

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with (
            ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.path,
                data=body,
                headers={
                    "Authorization": request.headers.get("Authorization", ""),
                    # The relay refuses a body of another type (415).
                    "Content-Type": request.headers.get("Content-Type", "application/json"),
                },
            ) as answer,
        ):
            text = await answer.text()
        if request.method == "POST":
            self.report_ids.append(json.loads(body)["report_id"])
            if len(self.report_ids) == 1:
                assert request.transport is not None
                request.transport.abort()  # stored by the relay; the answer is lost
        return web.Response(status=answer.status, text=text)


@pytest.fixture
async def losing_proxy(relay: RelayServer) -> AsyncIterator[LosingProxy]:
    proxy = LosingProxy(relay.url)
    await proxy.server.start_server()
    yield proxy
    await proxy.server.close()


async def test_a_lost_answer_means_a_resend_stored_once(
    hass: HomeAssistant,
    credentials: None,
    config_entry: MockConfigEntry,
    relay: RelayServer,
    relay_home: tuple[str, str],
    relay_options: dict[str, Any],
    losing_proxy: LosingProxy,
) -> None:
    proxy_url = str(losing_proxy.server.make_url("")).rstrip("/")
    await setup_with_options(hass, config_entry, relay_options | {CONF_RELAY_URL: proxy_url})
    await settle(hass)
    assert state_of(hass, CONNECTION) == "off"  # no answer: for all we know, not delivered
    await fire_retries(hass)
    assert len(losing_proxy.report_ids) == 2
    assert losing_proxy.report_ids[0] == losing_proxy.report_ids[1]
    assert await stored_ids(hass, relay, relay_home[0]) == losing_proxy.report_ids[:1]
    assert state_of(hass, QUEUE) == "0"
    assert state_of(hass, CONNECTION) == "on"


async def test_a_revoked_token_raises_a_repair_issue_and_a_new_one_resumes(
    hass: HomeAssistant,
    pushing_entry: MockConfigEntry,
    relay: RelayServer,
    relay_home: tuple[str, str],
    issue_registry: ir.IssueRegistry,
) -> None:
    home_id = relay_home[0]
    pusher = pusher_of(pushing_entry)
    await hass.async_add_executor_job(relay.cli, "home", "revoke-token", home_id)
    pusher.async_queue_report(force=True)
    await settle(hass)
    issue = issue_registry.async_get_issue(DOMAIN, token_issue_id(pushing_entry.entry_id))
    assert issue is not None
    assert issue.translation_placeholders == {
        "bridge": "Hue Bridge",
        "reason": "HTTP 401: missing, unknown or revoked home token",
    }
    connection = hass.states.get(CONNECTION)
    assert connection is not None
    assert connection.state == "off"
    assert connection.attributes["problem"] == "token_rejected"
    # No retries against a token that cannot work; reports keep piling up, not lost.
    pusher.async_queue_report(force=True)
    await fire_retries(hass)
    assert [item.attempts for item in pusher.queue] == [1, 0]

    printed = await hass.async_add_executor_job(relay.cli, "home", "rotate-token", home_id)
    new_token = printed.split("token:")[1].split()[0]
    result = await hass.config_entries.options.async_init(pushing_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"relay_enabled": True}
    )
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_RELAY_URL: relay.url, "relay_token": new_token, "push_interval": 60},
    )
    await settle(hass)
    assert issue_registry.async_get_issue(DOMAIN, token_issue_id(pushing_entry.entry_id)) is None
    assert len(await stored_ids(hass, relay, home_id)) == 4  # start, two waiting, new start
    assert state_of(hass, CONNECTION) == "on"


async def test_rate_limited_pushes_wait_for_retry_after(
    hass: HomeAssistant,
    credentials: None,
    config_entry: MockConfigEntry,
    tmp_path: Any,
    relay_template: Any,
    socket_enabled: None,
) -> None:
    strict = RelayServer(tmp_path, relay_template, HPOLL_RELAY_RATE="0.01", HPOLL_RELAY_BURST="1")
    home_id, token = strict.add_home()
    await hass.async_add_executor_job(strict.start)
    try:
        await setup_with_options(hass, config_entry, relay_at(strict.url, token, home_id))
        await settle(hass)  # the report at start uses the burst of one
        pusher = pusher_of(config_entry)
        pusher.async_queue_report(force=True)
        await settle(hass)
        assert pusher.problem == "rate_limited"
        assert pusher.retry_at is not None
        wait = (pusher.retry_at - dt_util.utcnow()).total_seconds()
        assert 95 <= wait <= 100  # the relay's Retry-After (1 report per 100 s), not ours
        await fire_retries(hass, wait - 10)
        assert [item.attempts for item in pusher.queue] == [1]
        await fire_retries(hass, wait + 1)
        assert [item.attempts for item in pusher.queue] == [2]
    finally:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_add_executor_job(strict.stop)


async def test_retries_back_off_exponentially_with_jitter(
    hass: HomeAssistant,
    credentials: None,
    config_entry: MockConfigEntry,
    socket_enabled: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    await setup_with_options(hass, config_entry, relay_at(nobody))
    await settle(hass)
    pusher = pusher_of(config_entry)
    delays = []
    for _ in range(9):
        assert pusher.retry_at is not None
        delays.append((pusher.retry_at - dt_util.utcnow()).total_seconds())
        await fire_retries(hass, delays[-1] + 1)
    for failure, delay in enumerate(delays, start=1):
        ceiling = min(PUSH_RETRY_MAX, PUSH_RETRY_BASE * 2 ** (failure - 1))
        assert ceiling * 0.5 - 1 <= delay <= ceiling, (failure, delays)
    assert (
        len(
            {
                round(d / c, 3)
                for d, c in zip(delays, [10, 20, 40, 80, 160, 320, 600, 600, 600], strict=True)
            }
        )
        > 1
    )
    assert caplog.text.count("Cannot deliver reports to the relay") == 1
    assert [item.attempts for item in pusher.queue] == [10]


async def test_diagnostics_show_the_queue_never_the_token(
    hass: HomeAssistant,
    pushing_entry: MockConfigEntry,
    relay: RelayServer,
    relay_home: tuple[str, str],
) -> None:
    diagnostics = await async_get_config_entry_diagnostics(hass, pushing_entry)
    dumped = json.dumps(diagnostics, default=str)
    assert relay_home[1] not in dumped
    assert relay.url not in dumped
    assert diagnostics["relay"]["connected"] is True
    assert diagnostics["relay"]["queue_depth"] == 0
    assert diagnostics["relay"]["reports_delivered"] == 1
    assert diagnostics["entry"]["options"]["relay_token"] == "**REDACTED**"


async def test_quiet_logs_when_all_is_well(
    hass: HomeAssistant, pushing_entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.hpoll")
    pusher_of(pushing_entry).async_queue_report(force=True)
    await settle(hass)
    assert "relay" not in caplog.text.lower()


async def test_home_assistant_stopping_queues_the_last_activity(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    pushing_entry: MockConfigEntry,
    cloud_urls: RunningCloud,
) -> None:
    someone_moves(cloud_urls)
    await pushing_entry.runtime_data.coordinator.async_refresh()
    # HA does not unload entries when it stops; the stop event is the last word.
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    stored = hass_storage[f"{DOMAIN}.{pushing_entry.entry_id}.relay_queue"]["data"]
    assert len(stored["reports"]) == 1
    assert stored["reports"][0]["report"]["activity"][0]["room"] == "Room 1"


async def test_unloading_mid_push_keeps_the_report_for_a_resend(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    credentials: None,
    config_entry: MockConfigEntry,
    socket_enabled: None,
) -> None:
    stub = StubServer()
    await stub.start()
    stub.add("POST", "/api/v1/reports", status=202, payload={}, delay=1.0)
    try:
        await setup_with_options(hass, config_entry, relay_at(stub.url))
        for _ in range(500):  # until the report at start is on its way
            if stub.requests:
                break
            await asyncio.sleep(0.01)
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        stored = hass_storage[f"{DOMAIN}.{config_entry.entry_id}.relay_queue"]["data"]
        assert [r["attempts"] for r in stored["reports"]] == [1]
        assert stored["reports"][0]["report"]["report_id"] == stub.requests[0].json["report_id"]
    finally:
        await stub.close()
