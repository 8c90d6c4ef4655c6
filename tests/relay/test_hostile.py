"""The relay against a hostile world (issue 11), each case on SQLite AND PostgreSQL: a committed
or careless key, poison and absurd reports, slow and idle clients, a failing disk or server,
abusive clients, SSRF through Apprise URLs, terminal escapes in names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
import json
import logging
import os
from pathlib import Path
import re
import resource
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch
import uuid

from aiohttp import ClientError, ClientSession, TCPConnector
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from relay import ingest
from relay.admin import Admin, NewHome
from relay.app import create_app
from relay.cli import main as relay_cli
from relay.config import Settings
from relay.http import auth
from relay.http.state import RELAY
from relay.messages import compose
from relay.notifications.send import deliver, validate_apprise_url
from relay.secretbox import SecretBox, SecretKeyError
from relay.storage.db import create_engine
from relay.storage.models import CAREGIVERS, REPORTS
from tests.relay import in_writer
from tests.relay.relay_process import free_port, serve_command

type Client = TestClient[Any, Any]
JSON = {"Content-Type": "application/json"}


def _settings(db_url: str, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "db_url": db_url,
        "rate_per_second": 10_000,
        "rate_burst": 10_000,
        "refusals_burst": 10_000,
        "refusal_delay": 0.0,
        "notify_seconds": 0,
    }
    return Settings(**(base | changes))


type MakeClient = Callable[..., Any]


@pytest.fixture
def make_client(aiohttp_client: Callable[..., Any], engine: AsyncEngine, db_url: str) -> MakeClient:
    """A test client of a relay on the test's database with some settings changed."""

    async def make(**changes: Any) -> Client:
        test_client: Client = await aiohttp_client(create_app(_settings(db_url, **changes), engine))
        return test_client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    test_client: Client = await make_client()
    return test_client


@pytest.fixture
async def home(admin: Admin) -> NewHome:
    return await admin.add_home("Flat", "Europe/Berlin")


async def _post(
    client: Client,
    token: str | None,
    body: Any,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], Any]:
    sent = {**JSON, **({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    data = raw if raw is not None else json.dumps(body).encode()
    async with client.post("/api/v1/reports", data=data, headers=sent) as response:
        return response.status, await response.json(content_type=None), response.headers


async def _payloads(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list((await connection.execute(select(REPORTS.c.payload))).scalars())


# -- 1. keys ---------------------------------------------------------------------------------


def _no_key_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPOLL_RELAY_SECRET_KEY", raising=False)
    monkeypatch.delenv("HPOLL_RELAY_KEY_FILE", raising=False)


async def test_no_key_path_relative_to_the_working_directory(
    engine: AsyncEngine, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_key_environment(monkeypatch)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    settings = Settings(db_url=db_url)
    if settings.db_url.startswith("sqlite"):
        # The key lives beside the database, wherever the relay is started from.
        assert settings.key_file == tmp_path / "relay.key"
        settings.secret_box()
        assert stat.S_IMODE((tmp_path / "relay.key").stat().st_mode) == 0o600
    else:
        assert settings.key_file is None
        with pytest.raises(SecretKeyError, match="HPOLL_RELAY_SECRET_KEY"):
            settings.secret_box()
        # serve refuses to start its notifier, and says why, before listening.
        status = await asyncio.to_thread(
            relay_cli, ["--db", db_url, "serve", "--port", str(free_port())]
        )
        assert status == 2
    assert list(cwd.iterdir()) == []
    monkeypatch.setenv("HPOLL_RELAY_KEY_FILE", "relative.key")
    with pytest.raises(SecretKeyError, match="absolute"):
        _ = Settings(db_url=db_url).key_file


async def test_key_file_others_can_read_is_refused(
    engine: AsyncEngine,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _no_key_environment(monkeypatch)
    key_file = tmp_path / "operator.key"
    assert relay_cli(["key", "generate", "--file", str(key_file)]) == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    monkeypatch.setenv("HPOLL_RELAY_KEY_FILE", str(key_file))
    key_file.chmod(0o640)
    args = ["--db", db_url, "caregiver", "add", "Ann", "--apprise", "ntfys://ntfy.sh/topic"]
    assert await asyncio.to_thread(relay_cli, args) == 2
    assert "chmod 600" in capsys.readouterr().err
    key_file.chmod(0o600)
    assert await asyncio.to_thread(relay_cli, args) == 0


async def _ciphertexts(engine: AsyncEngine) -> dict[int, bytes]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(CAREGIVERS.c.id, CAREGIVERS.c.apprise_url_encrypted))
        return {row.id: row.apprise_url_encrypted for row in rows}


async def test_key_rotate_reencrypts_every_url_in_one_transaction(
    engine: AsyncEngine, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_key_environment(monkeypatch)
    key_file = tmp_path / "operator.key"
    assert relay_cli(["key", "generate", "--file", str(key_file)]) == 0
    monkeypatch.setenv("HPOLL_RELAY_KEY_FILE", str(key_file))
    old_key = key_file.read_bytes().strip()
    urls = {"Ann": "ntfys://ntfy.sh/ann-topic", "Ben": "tgram://123456789:abcdefg_hijklmnop/42/"}
    for name, url in urls.items():
        args = ["--db", db_url, "caregiver", "add", name, "--apprise", url]
        assert await asyncio.to_thread(relay_cli, args) == 0
    before = await _ciphertexts(engine)

    assert await asyncio.to_thread(relay_cli, ["--db", db_url, "key", "rotate"]) == 0
    new_key = key_file.read_bytes().strip()
    assert new_key != old_key
    assert b"\n" not in new_key  # the old key is gone from the file
    after = await _ciphertexts(engine)
    assert after.keys() == before.keys()
    assert all(after[i] != before[i] for i in before)
    assert sorted(SecretBox(new_key).decrypt(c) for c in after.values()) == sorted(urls.values())
    with pytest.raises(Exception, match="cannot decrypt"):
        SecretBox(old_key).decrypt(next(iter(after.values())))

    # A URL no key can read: the rotation changes nothing at all, and both keys stay on disk.
    async with engine.begin() as connection:
        await connection.execute(
            CAREGIVERS.update()
            .where(CAREGIVERS.c.id == min(after))
            .values(apprise_url_encrypted=Fernet(Fernet.generate_key()).encrypt(b"x"))
        )
    spoiled = await _ciphertexts(engine)
    assert await asyncio.to_thread(relay_cli, ["--db", db_url, "key", "rotate"]) == 2
    assert await _ciphertexts(engine) == spoiled
    assert new_key in key_file.read_bytes().split()

    # With keys in the environment: NEW,OLD re-encrypts to NEW, which then reads alone.
    async with engine.begin() as connection:
        await connection.execute(CAREGIVERS.delete().where(CAREGIVERS.c.id == min(after)))
    monkeypatch.delenv("HPOLL_RELAY_KEY_FILE")
    env_new = Fernet.generate_key()
    monkeypatch.setenv("HPOLL_RELAY_SECRET_KEY", new_key.decode())
    assert await asyncio.to_thread(relay_cli, ["--db", db_url, "key", "rotate"]) == 2
    monkeypatch.setenv("HPOLL_RELAY_SECRET_KEY", f"{env_new.decode()},{new_key.decode()}")
    assert await asyncio.to_thread(relay_cli, ["--db", db_url, "key", "rotate"]) == 0
    (remaining,) = (await _ciphertexts(engine)).values()
    assert SecretBox(env_new).decrypt(remaining) == urls["Ben"]


# -- 2. poison reports ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("devices", 0, "name"), "Hall\ud800"),
        (("devices", 0, "room"), "Kitchen\u0000"),
        (("bridge", "name"), "\udfffBridge"),
        (("counters", "polls\u0000"), 1),
    ],
)
async def test_what_storage_cannot_hold_is_refused_naming_the_field(
    client: Client,
    engine: AsyncEngine,
    home: NewHome,
    make_report: Callable[..., Any],
    path: tuple[Any, ...],
    value: Any,
) -> None:
    report = make_report(home.id)
    if path[0] == "counters":
        report["counters"][path[1]] = value
        field = "counters"
    else:
        target = report
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        field = ".".join(str(part) for part in path)
    status, body, _ = await _post(client, home.token, report)
    assert status == 422
    assert body["field"].startswith(field)
    assert await _payloads(engine) == []
    assert (await _post(client, home.token, make_report(home.id)))[0] == 202


async def test_a_report_the_database_refuses_costs_no_other_report(
    client: Client, engine: AsyncEngine, home: NewHome, make_report: Callable[..., Any]
) -> None:
    """Whatever validation misses and the database refuses, only that report is answered
    422; the others of its batch are stored (the batch is halved around it)."""
    poison = make_report(home.id)
    others = [make_report(home.id) for _ in range(40)]
    writer = client.server.app[RELAY].writer
    await writer.in_writer(in_writer.refuse_report, poison["report_id"])
    try:
        results = await asyncio.gather(
            *(_post(client, home.token, r) for r in [*others[:20], poison, *others[20:]])
        )
        sizes = await writer.in_writer(in_writer.sizes)
    finally:
        await writer.in_writer(in_writer.heal)
    statuses = [status for status, _, _ in results]
    assert statuses[20] == 422
    assert statuses[:20] + statuses[21:] == [202] * 40
    assert max(sizes) > 1  # the poison really shared a batch with others
    assert len(await _payloads(engine)) == 40


# -- 3. malformed and out-of-range input --------------------------------------------------------


async def test_deep_nesting_and_absurd_times_are_client_errors(
    make_client: MakeClient,
    engine: AsyncEngine,
    db_url: str,
    home: NewHome,
    make_report: Callable[..., Any],
) -> None:
    client: Client = await make_client(max_body_bytes=2 * 1024 * 1024)
    status, body, _ = await _post(client, home.token, None, raw=b"[" * 1_000_000)
    assert (status, body["detail"]) == (400, "the JSON is nested too deeply")
    nested: Any = 1
    for _ in range(50_000):
        nested = [nested]
    with contextlib.suppress(RecursionError):  # json.dumps may not manage it either
        raw = json.dumps(make_report(home.id, counters={"x": nested})).encode()
        assert (await _post(client, home.token, None, raw=raw))[0] in (400, 422)
    for when in (
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "1999-12-31T23:59:59+00:00",
        "1970-01-01T00:00:00Z",
    ):
        status, body, _ = await _post(client, home.token, make_report(home.id, sent_at=when))
        assert (status, body["field"]) == (422, "sent_at"), when
        assert "accepted window" in body["detail"]
        report = make_report(home.id)
        report["devices"][0]["last_seen"] = when
        status, body, _ = await _post(client, home.token, report)
        assert (status, body["field"]) == (422, "devices.0.last_seen")
    status, _, _ = await _post(
        client, home.token, make_report(home.id, sent_at="2000-01-01T00:00:00Z")
    )
    assert status == 202
    assert await _payloads(engine) != []


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(codec=None), max_size=30),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2026-02-30T00:00:00Z",
            "\ud800",
            "\u0000",
            "",
            " ",
            "x" * 300,
        ]
    ),
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def _hostile_bodies(draw: st.DrawFn) -> bytes:
    """Valid-looking reports with one part replaced by anything, or raw garbage."""
    kind = draw(st.sampled_from(["replace", "value", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "value":
        return json.dumps(draw(_JSON)).encode()
    report: dict[str, Any] = json.loads(
        (Path(__file__).parents[1] / "fixtures" / "report_v1.json").read_text()
    )
    report["report_id"] = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    places: list[tuple[Any, Any]] = [(report, key) for key in report]
    places += [(report["bridge"], key) for key in report["bridge"]]
    places += [(report["devices"][0], key) for key in report["devices"][0]]
    places += [(report["activity"][0], key) for key in report["activity"][0]]
    container, key = draw(st.sampled_from(places))
    container[key] = draw(_JSON)
    return json.dumps(report).encode()


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_hostile_bodies())
async def test_hostile_json_never_gets_a_5xx(client: Client, home: NewHome, body: bytes) -> None:
    report_home = body.replace(b'"aabbccddeeffggh"', json.dumps(home.id).encode())
    status, _, _ = await _post(client, home.token, None, raw=report_home)
    assert status < 500, report_home[:300]


# -- 11. semantics -------------------------------------------------------------------------------


async def test_a_changed_report_under_a_known_id_is_a_conflict(
    client: Client, engine: AsyncEngine, home: NewHome, make_report: Callable[..., Any]
) -> None:
    report = make_report(home.id)
    assert (await _post(client, home.token, report))[0] == 202
    reordered = json.dumps(dict(reversed(list(report.items())))).encode()
    status, body, _ = await _post(client, home.token, None, raw=reordered)
    assert (status, body["status"]) == (200, "duplicate")  # the same report, resent
    changed = {**report, "counters": {"polls": 99}}
    status, body, _ = await _post(client, home.token, changed)
    assert (status, body["field"]) == (409, "report_id")
    # Both copies in one batch: the second is the conflict.
    twin = make_report(home.id)
    results = await asyncio.gather(
        _post(client, home.token, twin),
        _post(client, home.token, {**twin, "counters": {"polls": 1}}),
    )
    assert sorted(status for status, _, _ in results) == [202, 409]
    assert len(await _payloads(engine)) == 2


async def test_only_json_is_accepted(
    client: Client, home: NewHome, make_report: Callable[..., Any]
) -> None:
    raw = json.dumps(make_report(home.id)).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        status, _, _ = await _post(
            client, home.token, None, raw=raw, headers={"Content-Type": content_type}
        )
        assert status == 415, content_type
    status, _, _ = await _post(
        client,
        home.token,
        None,
        raw=raw,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert status == 202
    # No Content-Type at all: read as JSON (clients older than this check).
    async with client.post(
        "/api/v1/reports",
        data=json.dumps(make_report(home.id)).encode(),
        headers={"Authorization": f"Bearer {home.token}"},
        skip_auto_headers=["Content-Type"],
    ) as response:
        assert response.status == 202


async def test_metrics_behind_their_token(
    make_client: MakeClient, engine: AsyncEngine, db_url: str
) -> None:
    client: Client = await make_client(metrics_token="scrape-me")
    async with client.get("/metrics") as response:
        assert response.status == 401
        assert "hpoll_" not in await response.text()
    async with client.get("/metrics", headers={"Authorization": "Bearer wrong"}) as response:
        assert response.status == 401
    async with client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}) as response:
        assert response.status == 200
        assert "hpoll_reports_accepted_total" in await response.text()


# -- 9. terminal escapes -----------------------------------------------------------------------


async def test_cli_output_shows_control_characters_escaped(
    engine: AsyncEngine, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "\x1b[2J\x1b[31mMum\x07\u202eevil"
    args = ["--db", db_url, "home", "add", name, "--timezone", "Europe/Berlin"]
    assert await asyncio.to_thread(relay_cli, args) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(relay_cli, ["--db", db_url, "home", "list"]) == 0
    out = capsys.readouterr().out
    assert "\\x1b[2J\\x1b[31mMum\\x07\\u202eevil" in out
    assert not any(ch in out for ch in "\x1b\x07\u202e")


# -- 8. Apprise URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "json://example.com/a,xml://example.com/b",  # xml:// hidden behind an allowed json://
        "json://example.com/a xml://example.com/b",
        "json://127.0.0.1:8080/hook",
        "JSON://127.0.0.1/hook",
        "json://169.254.169.254/latest/meta-data",
        "json://[::1]:80/",
        "json://2130706433/",  # 127.0.0.1 as one number
        "json://localhost/",
        "ntfy://10.1.2.3/topic",
        "gotify://192.168.1.10/token",
        "mailtos://user:pass@example.com?smtp=10.0.0.1",
        "FILE:///etc/passwd",
    ],
)
async def test_apprise_urls_are_checked_as_apprise_reads_them(
    engine: AsyncEngine,
    db_url: str,
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("HPOLL_RELAY_ALLOW_PRIVATE_TARGETS")
    with pytest.raises(ValueError, match=r"not allowed|private address"):
        validate_apprise_url(url)
    args = ["--db", db_url, "caregiver", "add", "Eve", "--apprise", url]
    assert await asyncio.to_thread(relay_cli, args) == 2
    err = capsys.readouterr().err
    assert "private address" in err or "not allowed" in err
    assert url not in err  # an URL may hold a secret: never echoed


async def test_private_targets_need_the_operator_and_are_checked_again_when_sending(
    engine: AsyncEngine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert validate_apprise_url("JSON://8.8.8.8/hook") == "JSON://8.8.8.8/hook"  # public, any case
    assert validate_apprise_url("json://127.0.0.1:9/") == "json://127.0.0.1:9/"  # allowed here
    monkeypatch.delenv("HPOLL_RELAY_ALLOW_PRIVATE_TARGETS")
    delivery = await deliver("json://127.0.0.1:9/", compose.test_message("Ann"))
    assert not delivery.ok
    assert "private address" in delivery.detail
    assert "127.0.0.1" not in delivery.detail


@pytest.mark.parametrize(
    "query",
    ["rto=100", "cto=40", "retry=5&wait=10", "retry=4"],
    ids=["read", "connect", "wait", "retry"],
)
def test_a_url_whose_own_timeouts_outlast_a_send_is_refused(query: str) -> None:
    # Each send holds one of the dispatcher's threads until it ends; the relay retries failed
    # messages itself. (Apprise's defaults, 4 s to connect and 4 s a read, pass.)
    assert validate_apprise_url("json://8.8.8.8/hook?rto=8&cto=5&retry=1&wait=2")
    url = f"json://8.8.8.8/secret-hook?{query}"
    with pytest.raises(ValueError, match="timeouts and retries") as refused:
        validate_apprise_url(url)
    assert "secret-hook" not in str(refused.value)


# -- 4. slow and idle clients --------------------------------------------------------------------


def _lower_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))


async def _answer(session: ClientSession, method: str, url: str, **kwargs: Any) -> int | None:
    try:
        async with session.request(method, url, **kwargs) as response:
            return response.status
    except (ClientError, TimeoutError):
        return None


async def _started(
    session: ClientSession,
    base: str,
    process: subprocess.Popen[bytes],
    why: Callable[[], str] = lambda: "",
) -> None:
    """Until the relay in ``process`` answers /healthz, whatever it answers (on a loaded CI
    machine its start, mostly imports, can take many seconds)."""
    deadline = time.monotonic() + 90
    while await _answer(session, "GET", f"{base}/healthz") is None:
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the relay did not start ({process.returncode}): {why()}")
        await asyncio.sleep(0.1)


async def test_idle_and_slow_clients_cannot_starve_the_relay(
    engine: AsyncEngine, db_url: str, home: NewHome, make_report: Callable[..., Any], tmp_path: Path
) -> None:
    """A relay limited to 160 open files, held by 400 connections that send nothing or trickle
    their headers: it refuses what is over its limit, drops the idle ones after the header
    timeout, and /healthz and ingest keep answering; its log stays small. Its descriptors never
    run out: not one accept fails, and the database is never out of reach (a burst accepted in
    one go once took them all, and ingest answered 503 until the refusals were closed)."""
    port = free_port()
    log = tmp_path / "relay.log"
    env = {
        **os.environ,
        "HPOLL_RELAY_HEADER_TIMEOUT": "1",
        "HPOLL_RELAY_NOTIFY_SECONDS": "0",
    }
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            serve_command(db_url, port),
            env=env,
            stdout=log_file,
            stderr=log_file,
            preexec_fn=_lower_file_limit,  # noqa: PLW1509 - only setrlimit, no locks involved
        )
    base = f"http://127.0.0.1:{port}"
    idle: list[socket.socket] = []
    try:
        async with ClientSession() as session:
            await _started(session, base, process, lambda: log.read_text()[-2000:])
            for number in range(400):
                sock = socket.socket()
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    sock.connect(("127.0.0.1", port))
                idle.append(sock)
                if number % 2:
                    with contextlib.suppress(OSError):
                        sock.send(b"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\n")
            health = ingest_status = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (health != 200 or ingest_status != 202):
                health = await _answer(session, "GET", f"{base}/healthz", timeout=_timeout())
                if ingest_status != 202:
                    ingest_status = await _ingest(session, base, home, make_report)
                await asyncio.sleep(0.1)
            assert (health, ingest_status) == (200, 202)
            # Every idle or trickling connection has been closed by the relay (EOF or a 503).
            closed = await asyncio.to_thread(_closed_by_peer, idle, 10.0)
            assert closed == len(idle)
            # The refusals are visible: counted on /metrics, and said in the log.
            async with session.get(f"{base}/metrics", timeout=_timeout()) as response:
                text = await response.text()
            refused = re.search(r"^hpoll_connections_refused_total (\d+)$", text, re.M)
            assert refused is not None
            assert int(refused[1]) > 0
    finally:
        for sock in idle:
            sock.close()
        process.terminate()
        await asyncio.to_thread(process.wait, 10)
    assert log.stat().st_size < 64 * 1024
    lines = log.read_text().splitlines()
    assert [line for line in lines if '"level": "error"' in line] == []
    assert len([line for line in lines if "refusing connections" in line]) == 1


@pytest.mark.parametrize(
    ("path", "requests"),
    [("/api/v1/openapi.json", 400), ("/api/v1/openapi.json", 90), ("/static/dashboard.css", 400)],
)
async def test_clients_that_never_read_are_dropped(
    db_url: str,
    home: NewHome,
    make_report: Callable[..., Any],
    tmp_path: Path,
    path: str,
    requests: int,
) -> None:
    """Clients that pipeline requests and never read what comes back (a response, or a file
    the kernel would send itself) hold all the relay's connections: once the kernel has taken
    nothing more for the body timeout, they are dropped, and ingest answers again. Also when
    what is left unsent is small (90 answers of 24 KB nearly fill loopback's 2 MB buffer: the
    rest stayed under aiohttp's 64 KiB mark, and the connection stayed for good)."""
    port = free_port()
    log = tmp_path / "relay.log"
    env = {
        **os.environ,
        "HPOLL_RELAY_MAX_CONNECTIONS": "4",
        "HPOLL_RELAY_BODY_TIMEOUT": "1",
        "HPOLL_RELAY_NOTIFY_SECONDS": "0",
    }
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            serve_command(db_url, port), env=env, stdout=log_file, stderr=log_file
        )
    base = f"http://127.0.0.1:{port}"
    readers: list[socket.socket] = []
    try:
        async with ClientSession() as session:
            await _started(session, base, process, lambda: log.read_text()[-2000:])
        # A connection per request: none kept from before the readers came.
        async with ClientSession(connector=TCPConnector(force_close=True)) as session:
            request = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            for _ in range(4):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
                sock.connect(("127.0.0.1", port))
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    sock.send(request * requests)
                readers.append(sock)
            await asyncio.sleep(0.5)
            held = await _answer(session, "GET", f"{base}/healthz", timeout=_timeout())
            statuses = []
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and (not statuses or statuses[-1] != 202):
                statuses.append(await _ingest(session, base, home, make_report))
                await asyncio.sleep(0.2)
            assert held == 503  # the four readers held every connection
            assert statuses[-1] == 202
        assert await asyncio.to_thread(_closed_by_peer, readers, 5.0) == len(readers)
    finally:
        for sock in readers:
            sock.close()
        process.terminate()
        await asyncio.to_thread(process.wait, 10)


@pytest.mark.parametrize("path", ["/signin", "/api/v1/alerts/1/ack"])
async def test_a_form_that_never_comes_is_a_408(
    engine: AsyncEngine, db_url: str, tmp_path: Path, path: str
) -> None:
    """Forms (sign-in, acknowledging an alert) need no sign-in: a client that sends only the
    headers is answered 408 once the body timeout has passed, instead of holding its
    connection (twenty such held every slot for minutes)."""
    port = free_port()
    log = tmp_path / "relay.log"
    env = {**os.environ, "HPOLL_RELAY_BODY_TIMEOUT": "1", "HPOLL_RELAY_NOTIFY_SECONDS": "0"}
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            serve_command(db_url, port), env=env, stdout=log_file, stderr=log_file
        )
    try:
        async with ClientSession() as session:
            await _started(session, f"http://127.0.0.1:{port}", process, log.read_text)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            "csrf=".encode()
        )
        await writer.drain()
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.readline(), 10)
        assert answer.split()[1] == b"408"
        assert time.monotonic() - started < 5
        writer.close()
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 10)


async def _ingest(
    session: ClientSession, base: str, home: NewHome, make_report: Callable[..., Any]
) -> int | None:
    """The status of one report pushed by ``home`` (None: no answer in time)."""
    return await _answer(
        session,
        "POST",
        f"{base}/api/v1/reports",
        json=make_report(home.id),
        headers={"Authorization": f"Bearer {home.token}"},
        timeout=_timeout(),
    )


def _timeout() -> Any:
    from aiohttp import ClientTimeout

    return ClientTimeout(total=3)


def _closed_by_peer(sockets: list[socket.socket], within: float) -> int:
    """How many of ``sockets`` the other side closed (reading to EOF) within ``within`` s."""
    import selectors

    pending = set(sockets)
    closed = 0
    deadline = time.monotonic() + within
    with selectors.DefaultSelector() as selector:
        for sock in pending:
            selector.register(sock, selectors.EVENT_READ)
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(sock)
                    pending.discard(sock)
                    closed += 1
    return closed


# -- 5. health that tells the truth, recovery without a restart -----------------------------------


async def _health(client: Client) -> tuple[int, str, str | None]:
    async with client.get("/healthz") as response:
        body = await response.json(content_type=None)
        return response.status, body.get("detail", ""), response.headers.get("Retry-After")


async def _post_until(
    client: Client, home: NewHome, make_report: Callable[..., Any], wanted: int, tries: int = 200
) -> list[int]:
    statuses = []
    for _ in range(tries):
        statuses.append((await _post(client, home.token, make_report(home.id)))[0])
        if statuses[-1] == wanted:
            return statuses
    pytest.fail(f"never {wanted}: {statuses[-5:]}")


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Any:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(directory: Path) -> Path:
    """Fill the file system at ``directory`` to the last byte."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as handle:
        for size in (65536, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * size)
    return filler


async def _set_postgres_read_only(db_url: str, read_only: bool) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database="postgres"
    )
    try:
        setting = "SET default_transaction_read_only = on" if read_only else "RESET ALL"
        await connection.execute(f'ALTER DATABASE "{url.database}" {setting}')
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            url.database,
        )
    finally:
        await connection.close()


async def test_health_tells_the_truth_and_the_writer_recovers(
    aiohttp_client: Callable[..., Any],
    db_url: str,
    admin: Admin,
    make_report: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLite: a small tmpfs fills up. PostgreSQL: the database turns read-only. Either way
    reports get 503 + Retry-After, /healthz says 503 and why, and once the disk has room (or
    the database is writable) again, both work without a restart; nothing accepted is lost."""
    monkeypatch.setattr("relay.http.views.PROBE_EVERY", 0.0)
    sqlite = db_url.startswith("sqlite")
    with contextlib.ExitStack() as stack:
        if sqlite:
            disk = stack.enter_context(_tmpfs(tmp_path / "disk", "16m"))
            db_url = f"sqlite+aiosqlite:///{disk / 'relay.db'}"
            assert await asyncio.to_thread(relay_cli, ["--db", db_url, "db", "upgrade"]) == 0
        engine = create_engine(db_url)
        try:
            home = await Admin(engine).add_home("Disk", "Europe/Berlin")
            client: Client = await aiohttp_client(create_app(_settings(db_url), engine))
            assert (await _post(client, home.token, make_report(home.id)))[0] == 202
            assert (await _health(client))[0] == 200

            if sqlite:
                filler = _fill(disk)
            else:
                await _set_postgres_read_only(db_url, True)
            statuses = await _post_until(client, home, make_report, 503)
            status, detail, retry_after = await _health(client)
            assert (status, retry_after) == (503, "5")
            assert ("full" if sqlite else "ReadOnly") in detail, detail

            if sqlite:
                filler.unlink()
            else:
                await _set_postgres_read_only(db_url, False)
            statuses += await _post_until(client, home, make_report, 202, tries=20)
            assert (await _health(client))[0] == 200
            assert len(await _payloads(engine)) == 1 + statuses.count(202)
        finally:
            await engine.dispose()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the relay as another user")
async def test_the_writer_recovers_when_permissions_come_back(
    make_report: Callable[..., Any],
) -> None:
    """The relay runs as an unprivileged user (root ignores file modes) on a SQLite database
    that is read-only, then made writable again: 503 and an honest /healthz meanwhile, 202
    afterwards, without a restart (SQLite made its -wal and -shm read-only too, from the
    database's mode: the writer gives them the database's mode back). PostgreSQL's read-only
    case is the test above."""
    # Not under tmp_path: pytest's base directory is root's alone (0700).
    data = Path(tempfile.mkdtemp(prefix="hpoll-perms-"))
    data.chmod(0o755)
    database = data / "relay.db"
    url = f"sqlite+aiosqlite:///{database}"
    assert await asyncio.to_thread(relay_cli, ["--db", url, "db", "upgrade"]) == 0
    engine = create_engine(url)
    home = await Admin(engine).add_home("Perms", "Europe/Berlin")
    await engine.dispose()
    shutil.chown(data, "nobody", "nogroup")
    shutil.chown(database, "nobody", "nogroup")
    database.chmod(0o444)
    port = free_port()
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    runs = subprocess.run([*command, "--", sys.executable, "-c", "import relay.cli"], check=False)
    if runs.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        pytest.skip(
            "nobody cannot run this checkout's Python (a clone in `mktemp -d` sits in a "
            "directory only root may enter)"
        )
    log = data / "relay.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--", *serve_command(url, port)],
            env={**os.environ, "HPOLL_RELAY_NOTIFY_SECONDS": "0"},
            cwd=data,
            stdout=output,
            stderr=output,
        )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {home.token}"}

    async def post(session: ClientSession) -> int | None:
        report = make_report(home.id)
        return await _answer(
            session, "POST", f"{base}/api/v1/reports", json=report, headers=headers
        )

    try:
        async with ClientSession() as session:
            await _started(session, base, process, lambda: log.read_text()[-2000:])
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 503
                assert "readonly" in (await response.json())["detail"]
            assert await post(session) == 503
            database.chmod(0o644)
            # Recovery takes a failed attempt or two (each closes every connection opened
            # while the file was read-only); on a loaded machine they take a while.
            statuses = [await post(session)]
            deadline = time.monotonic() + 30
            while statuses[-1] != 202 and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                statuses.append(await post(session))
            assert 202 in statuses, statuses
            await asyncio.sleep(1.1)  # /healthz probes at most once a second
            assert await _answer(session, "GET", f"{base}/healthz") == 200
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 10)
        shutil.rmtree(data, ignore_errors=True)


async def _sqlite_home(database: Path, name: str) -> NewHome:
    """A migrated SQLite database at ``database`` with one home."""
    url = f"sqlite+aiosqlite:///{database}"
    assert await asyncio.to_thread(relay_cli, ["--db", url, "db", "upgrade"]) == 0
    engine = create_engine(url)
    home = await Admin(engine).add_home(name, "Europe/Berlin")
    await engine.dispose()
    return home


async def _sqlite_relay(
    aiohttp_client: Callable[..., Any], database: Path
) -> tuple[Client, AsyncEngine]:
    url = f"sqlite+aiosqlite:///{database}"
    engine = create_engine(url)
    return await aiohttp_client(create_app(_settings(url), engine)), engine


def _back_up(database: Path, backup: Path) -> None:
    """A consistent copy of a live SQLite database (its WAL checkpointed first)."""
    with (
        contextlib.closing(sqlite3.connect(database)) as live,
        contextlib.closing(sqlite3.connect(backup)) as copy,
    ):
        live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        live.backup(copy)


async def test_a_database_file_replaced_or_removed_while_running_gets_no_202(
    aiohttp_client: Callable[..., Any],
    make_report: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLite: an operator restores a backup over the database file, or moves it away, while
    the relay runs. Its open connections went on writing into the file that was there: reports
    were answered 202 and were in no file anyone would read (and reopening would read the old
    file's WAL into the new one). Now the relay answers 503 and /healthz says why: until it
    is restarted after a replacement, while the file is away after a move."""
    monkeypatch.setattr("relay.http.views.PROBE_EVERY", 0.0)
    database = tmp_path / "relay.db"
    home = await _sqlite_home(database, "Restored")

    async def post(client: Client) -> tuple[int, str]:
        report = make_report(home.id)
        return (await _post(client, home.token, report))[0], report["report_id"]

    async def stored(engine: AsyncEngine) -> set[str]:
        return {json.loads(payload)["report_id"] for payload in await _payloads(engine)}

    client, engine = await _sqlite_relay(aiohttp_client, database)
    try:
        assert (await post(client))[0] == 202
        moved = tmp_path / "moved.db"
        database.rename(moved)
        assert (await post(client))[0] == 503
        status, detail, _ = await _health(client)
        assert status == 503
        assert "the database file is missing" in detail, detail
        assert not database.exists()  # nothing made in its place
        moved.rename(database)  # the same file back: on with it
        accepted = [r for status, r in [await post(client) for _ in range(5)] if status == 202]
        assert accepted
        assert set(accepted) <= await stored(engine)

        backup = tmp_path / "backup.db"
        _back_up(database, backup)
        backup.replace(database)
        assert {(await post(client))[0] for _ in range(5)} == {503}
        status, detail, _ = await _health(client)
        assert status == 503
        assert "replaced while the relay ran: restart the relay" in detail, detail
    finally:
        await engine.dispose()
    # Restarted as README says (the old file's -wal and -shm removed): on with the new file.
    for side in ("-wal", "-shm"):
        database.with_name(database.name + side).unlink(missing_ok=True)
    client, engine = await _sqlite_relay(aiohttp_client, database)
    try:
        accepted = [r for status, r in [await post(client) for _ in range(5)] if status == 202]
        assert len(accepted) == 5
        assert set(accepted) <= await stored(engine)
        async with engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA integrity_check")) == "ok"
    finally:
        await engine.dispose()


async def test_a_file_replaced_between_the_check_and_the_commit_gets_no_202(
    aiohttp_client: Callable[..., Any], make_report: Callable[..., Any], tmp_path: Path
) -> None:
    """The writer checks the file before a batch and again after its commit: a restore in
    between (done as README says) leaves the batch in the old file, answered 503."""
    database = tmp_path / "relay.db"
    home = await _sqlite_home(database, "Mid-batch")
    client, engine = await _sqlite_relay(aiohttp_client, database)
    backup = tmp_path / "backup.db"
    try:
        assert (await _post(client, home.token, make_report(home.id)))[0] == 202
        _back_up(database, backup)
        writer = client.server.app[RELAY].writer
        await writer.in_writer(in_writer.restore_after_commit, str(database), str(backup))
        assert (await _post(client, home.token, make_report(home.id)))[0] == 503
    finally:
        await engine.dispose()


# -- 6. a bounded WAL --------------------------------------------------------------------------


@pytest.mark.parametrize("linked", [False, True], ids=["file", "symlink"])
async def test_the_writer_keeps_the_sqlite_wal_bounded(
    aiohttp_client: Callable[..., Any],
    tmp_path: Path,
    make_report: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    linked: bool,
) -> None:
    """(SQLite only: PostgreSQL manages its own WAL.) With a reader holding a snapshot now and
    then, the background PASSIVE checkpoint alone lets the WAL grow; the writer's own
    checkpoint brings it back, and journal_size_limit truncates the file. The WAL is beside
    the database file itself, also when the relay's path is a symbolic link to it."""
    monkeypatch.setattr("relay.ingest.WAL_CHECKPOINT_BYTES", 256 * 1024)
    monkeypatch.setattr("relay.ingest.CHECKPOINT_EVERY", 3600.0)  # the background one: off
    real = tmp_path / "data" / "real.db" if linked else tmp_path / "relay.db"
    real.parent.mkdir(exist_ok=True)
    if linked:
        (tmp_path / "relay.db").symlink_to(real)
    url = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    assert await asyncio.to_thread(relay_cli, ["--db", url, "db", "upgrade"]) == 0
    engine = create_engine(url)
    try:
        home = await Admin(engine).add_home("WAL", "Europe/Berlin")
        client: Client = await aiohttp_client(create_app(_settings(url), engine))
        wal = real.with_name(real.name + "-wal")
        peak = 0
        for _ in range(30):
            await asyncio.gather(
                *(_post(client, home.token, make_report(home.id)) for _ in range(10))
            )
            peak = max(peak, wal.stat().st_size)
        assert len(await _payloads(engine)) == 300
        async with engine.connect() as connection:
            limit = await connection.scalar(text("PRAGMA journal_size_limit"))
        assert limit == 64 * 1024 * 1024
        # Without the writer's checkpoint 300 reports make 2.5 MB or more of WAL here; with
        # it, about its 256 KiB threshold.
        assert peak < 1024 * 1024, peak
    finally:
        await engine.dispose()


# -- 7. database outage ------------------------------------------------------------------------


async def test_every_database_outage_is_503_with_retry_after(
    make_client: MakeClient,
    engine: AsyncEngine,
    db_url: str,
    home: NewHome,
    make_report: Callable[..., Any],
) -> None:
    client: Client = await make_client(admin_token="admin-token")
    assert (await _post(client, home.token, make_report(home.id)))[0] == 202  # token now known
    relay = client.server.app[RELAY]
    working = relay.engine
    relay.engine = relay.tokens.engine = create_engine(
        "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    )
    relay.probed = None

    async def down(batch: Any) -> Any:
        raise OperationalError("INSERT …", {}, ConnectionRefusedError("down"))

    later = time.monotonic() + 60  # the token cache (10 s) has expired; the outage grace has not
    try:
        with (
            patch.object(relay.writer, "_store", side_effect=down),
            patch("relay.http.directory.time.monotonic", return_value=later),
        ):
            status, body, headers = await _post(client, home.token, make_report(home.id))
            assert (status, headers.get("Retry-After")) == (503, "5"), body
            status, body, headers = await _post(client, "hpr_never_seen", make_report(home.id))
            assert (status, headers.get("Retry-After")) == (503, "5"), body
            for path, token in (
                ("/api/v1/home", home.token),
                (f"/api/v1/homes/{home.id}", "admin-token"),
                ("/healthz", None),
            ):
                auth = {"Authorization": f"Bearer {token}"} if token else {}
                async with client.get(path, headers=auth) as response:
                    assert response.status == 503, path
                    assert response.headers["Retry-After"] == "5"
            async with client.get("/metrics") as response:
                assert response.status == 200  # what the relay knows without its database
    finally:
        await relay.engine.dispose()
        relay.engine = relay.tokens.engine = working
    assert (await _post(client, home.token, make_report(home.id)))[0] == 202


# -- 10. cheap abuse -------------------------------------------------------------------------------


async def test_a_client_over_its_refusal_limit_waits_for_its_429(
    make_client: MakeClient,
    home: NewHome,
    make_report: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A flood answered at once comes straight back: the 429 waits (costing nothing meanwhile),
    # so a flooding connection slows to one request per delay.
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(auth, "asyncio", SimpleNamespace(sleep=sleep))
    client: Client = await make_client(
        refusals_per_second=0.01,
        refusals_burst=2,
        refusal_delay=0.75,
        trusted_proxies=frozenset({"127.0.0.1"}),
    )
    attacker = {"X-Forwarded-For": "203.0.113.10"}
    statuses = [
        (await _post(client, "hpr_made_up", make_report(home.id), headers=attacker))[0]
        for _ in range(4)
    ]
    assert statuses == [401, 401, 429, 429]
    assert waited == [0.75, 0.75]  # only the limited ones wait


async def test_made_up_tokens_share_one_check_and_refusals_are_limited_per_address(
    make_client: MakeClient,
    engine: AsyncEngine,
    db_url: str,
    home: NewHome,
    make_report: Callable[..., Any],
) -> None:
    client: Client = await make_client(
        refusals_per_second=0.01, refusals_burst=20, trusted_proxies=frozenset({"127.0.0.1"})
    )
    statements = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal statements
        statements += "token" in statement  # the generation counter or the tokens

    attacker = {"X-Forwarded-For": "203.0.113.9"}
    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        flood = await asyncio.gather(
            *(
                _post(client, f"hpr_made_up_{n}", make_report(home.id), headers=attacker)
                for n in range(20)
            )
        )
        limited = [
            await _post(client, "hpr_made_up", make_report(home.id), headers=attacker)
            for _ in range(20)
        ]
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert [status for status, _, _ in flood] == [401] * 20
    assert [status for status, _, _ in limited] == [429] * 20  # before any lookup or body read
    assert all(int(headers["Retry-After"]) > 0 for _, _, headers in limited)
    # The directory's first load (the generation, the tokens) and one re-check for all twenty.
    assert statements == 3
    # The attacker's address is limited even with a valid token; a home elsewhere is not.
    assert (await _post(client, home.token, make_report(home.id), headers=attacker))[0] == 429
    elsewhere = {"X-Forwarded-For": "198.51.100.7"}
    assert (await _post(client, home.token, make_report(home.id), headers=elsewhere))[0] == 202


async def test_a_refused_upload_is_not_read(
    make_client: MakeClient, engine: AsyncEngine, db_url: str, home: NewHome
) -> None:
    """401 for a big body is answered at once and the connection closed: the relay does not
    read (or drain) 1.5 MB for a stranger."""
    client: Client = await make_client(max_body_bytes=2 * 1024 * 1024)
    read = 0
    original = ingest.IngestWriter.submit

    async def body_chunks() -> AsyncIterator[bytes]:
        nonlocal read
        for _ in range(24):
            read += 65536
            yield b" " * 65536
            await asyncio.sleep(0.05)

    with patch.object(ingest.IngestWriter, "submit", original):
        async with client.post(
            "/api/v1/reports",
            data=body_chunks(),
            headers={**JSON, "Authorization": "Bearer hpr_unknown"},
        ) as response:
            assert response.status == 401
            assert response.headers.get("Connection", "").lower() == "close"
    assert read < 24 * 65536


async def test_a_body_is_waited_for_only_until_the_body_timeout(
    make_client: MakeClient, home: NewHome, make_report: Callable[..., Any]
) -> None:
    """A body that arrives in pieces within ``HPOLL_RELAY_BODY_TIMEOUT`` is stored; one that
    stalls is answered 408 and nothing is stored."""
    client: Client = await make_client(body_timeout=1.0)
    headers = {**JSON, "Authorization": f"Bearer {home.token}"}

    def pieces(body: bytes, pause: float) -> Callable[[], AsyncIterator[bytes]]:
        async def send() -> AsyncIterator[bytes]:
            middle = len(body) // 2
            yield body[:middle]
            await asyncio.sleep(pause)
            yield body[middle:]

        return send

    slow = json.dumps(make_report(home.id)).encode()
    async with client.post("/api/v1/reports", data=pieces(slow, 0.2)(), headers=headers) as answer:
        assert answer.status == 202
    stalled = json.dumps(make_report(home.id)).encode()
    with contextlib.suppress(ClientError):  # the relay may close before the rest is sent
        async with client.post(
            "/api/v1/reports", data=pieces(stalled, 3.0)(), headers=headers
        ) as answer:
            assert answer.status == 408
    relay = client.server.app[RELAY]  # type: ignore[union-attr]
    assert relay.metrics.rejected["timeout"] == 1
    assert relay.metrics.accepted == 1


async def test_a_home_sending_big_garbage_is_limited_by_what_it_costs(
    make_client: MakeClient, engine: AsyncEngine, db_url: str, home: NewHome
) -> None:
    """Refused bodies that were parsed count by their size, against the home whatever address
    they come from: 1.5 MB of broken JSON is two dozen refusals, not one."""
    client: Client = await make_client(
        max_body_bytes=2 * 1024 * 1024,
        refusals_per_second=0.01,
        refusals_burst=50,
        trusted_proxies=frozenset({"127.0.0.1"}),
    )
    garbage = b'{"x": [' + b"1," * 750_000 + b"1"
    statuses = [
        (
            await _post(
                client, home.token, None, raw=garbage, headers={"X-Forwarded-For": f"192.0.2.{n}"}
            )
        )[0]
        for n in range(1, 6)
    ]
    assert statuses[:3] == [400, 400, 400]
    assert statuses[3:] == [429, 429]


def test_accept_errors_are_logged_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    """Out of file descriptors, asyncio reports every failed accept; the relay logs one line a
    minute with a count (the outside test saw 60 MB of log in 25 s)."""
    from relay.http.serve import AcceptErrorLog

    handler = AcceptErrorLog()
    loop = asyncio.new_event_loop()
    try:
        context = {
            "message": "socket.accept() out of system resource",
            "exception": OSError(24, "Too many open files"),
        }
        with caplog.at_level("ERROR", logger="relay.http"):
            for _ in range(1000):
                handler(loop, context)
        assert len(caplog.records) == 1
        assert "Too many open files" in caplog.records[0].getMessage()
        assert handler.suppressed == 999
    finally:
        loop.close()


def test_malformed_requests_are_a_warning_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    """aiohttp logs each request it cannot parse as an error, one line per request anyone may
    send (a header line of 100 KB): the relay keeps one warning a minute, with a count, and
    lets every other error through as it was."""
    from aiohttp.http_exceptions import ContentLengthError, LineTooLong

    from relay.logs import ClientFaultLog

    logger = logging.getLogger("test.aiohttp.server")
    fault = ClientFaultLog()
    logger.addFilter(fault)
    try:
        with caplog.at_level("INFO", logger="test.aiohttp.server"):
            for _ in range(1000):  # as aiohttp logs them: the exception passed as exc_info
                logger.error("Error handling request", exc_info=LineTooLong(b"x" * 10, "8190"))
            logger.error("Error handling request", exc_info=RuntimeError("a bug of ours"))
            logger.error("Error handling request", exc_info=ContentLengthError("a view's 500"))
    finally:
        logger.removeFilter(fault)
    assert [(r.levelname, r.exc_info[0] if r.exc_info else None) for r in caplog.records] == [
        ("WARNING", LineTooLong),
        ("ERROR", RuntimeError),
        ("ERROR", ContentLengthError),
    ]
    assert fault.suppressed == 999


def test_the_connection_gate_counts_from_accept_to_close(caplog: pytest.LogCaptureFixture) -> None:
    """The gate counts a connection from its factory call, before its transport exists, until
    it is lost; over the limit it hands out refusals, counted and logged once a minute, and a
    closed connection frees its place."""
    from relay.http.serve import ConnectionGate
    from relay.metrics import Metrics

    made: list[asyncio.Protocol] = []

    class Handlers:
        def __init__(self) -> None:
            self.connections: list[object] = []

        def __call__(self) -> asyncio.Protocol:
            made.append(asyncio.Protocol())
            return made[-1]

    metrics = Metrics()
    gate = ConnectionGate(Handlers(), limit=2, metrics=metrics)
    first, _second = gate(), gate()
    with caplog.at_level("WARNING", logger="relay.http"):
        refused = [gate() for _ in range(5)]
    assert (gate.open, len(made)) == (2, 2)
    assert {type(protocol).__name__ for protocol in refused} == {"_Refuse"}
    assert metrics.connections_refused == 5
    assert "hpoll_connections_refused_total 5" in metrics.render()
    assert len(caplog.records) == 1
    assert "2 open" in caplog.records[0].getMessage()
    first.connection_lost(None)
    assert gate.open == 1
    third = gate()
    assert type(third).__name__ == "_Counted"
    assert (gate.open, len(made)) == (2, 3)


async def test_requests_dropped_at_once_cannot_pile_up_handlers() -> None:
    """A client sends a request that awaits the database and hangs up at once: its connection
    is closed, but aiohttp runs the handler on. Those count against the limit too: a flood of
    them once piled up 75,000 handlers and 1.7 GB, growing, while no connection was refused."""
    from aiohttp import web

    from relay.http.serve import ConnectionGate

    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:  # /healthz, /metrics: the database
        await release.wait()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    assert runner.server is not None
    gate = ConnectionGate(runner.server, limit=10)
    listener = await asyncio.get_running_loop().create_server(gate, "127.0.0.1", 0, backlog=8)
    port = listener.sockets[0].getsockname()[1]
    most = 0
    try:
        for _ in range(60):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.005)
            writer.close()
            await asyncio.sleep(0.005)
            most = max(most, len(runner.server.connections))
        assert most <= gate.limit
        assert gate.open <= gate.limit
    finally:
        release.set()
        listener.close()
        await listener.wait_closed()
        await runner.cleanup()
