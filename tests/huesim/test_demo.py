"""The demo: a simulated home reporting to a real relay process."""

from __future__ import annotations

import asyncio
from pathlib import Path
import re

from aiohttp import ClientSession, CookieJar
import pytest

from huesim.demo import main
from relay.cli import main as relay_cli
from tests.relay.relay_process import RelayProcess, free_port


async def test_demo_reports_reach_the_relay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HPOLL_RELAY_SECRET_KEY", raising=False)
    db = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    assert await asyncio.to_thread(relay_cli, ["--db", db, "db", "upgrade"]) == 0
    relay = RelayProcess(db, HPOLL_RELAY_NOTIFY_SECONDS="0.3")
    await relay.start()
    try:
        token_file = tmp_path / "demo.token"
        args = [
            "--relay",
            relay.url,
            "--db",
            db,
            "--token-file",
            str(token_file),
            "--port",
            str(free_port()),
            "--inbox-port",
            str(free_port()),
            "--interval",
            "0.5",
            "--cycles",
            "4",
            "--seed",
            "1",
        ]
        await asyncio.to_thread(main, args)
        out = capsys.readouterr().out
        assert out.count("report 202:") == 4
        # The relay told the demo's caregiver about the captured home's low battery, through
        # real Apprise, into the demo's inbox.
        assert ">> to Demo carer: " in out
        assert "battery low: Armchair dial" in out
        assert token_file.read_text().startswith("hpr_")
        # It printed the dashboard and a sign-in link that works (once) for the demo caregiver.
        link = re.search(r"sign in as Demo carer: (\S+)", out)
        assert link, out
        assert link.group(1).startswith(f"{relay.url}/signin/")
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as browser:
            async with browser.get(link.group(1)) as page:
                csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
            assert csrf
            async with browser.post(link.group(1), data={"csrf": csrf.group(1)}) as signed_in:
                assert signed_in.url.path == "/"
                assert "Demo home" in await signed_in.text()
        # A second run reuses the home and its token.
        await asyncio.to_thread(main, [*args[:-4], "--cycles", "1", "--seed", "2"])
        assert capsys.readouterr().out.count("report 202:") == 1
        assert await asyncio.to_thread(relay_cli, ["--db", db, "home", "list"]) == 0
        listing = capsys.readouterr().out
        assert listing.count("Demo home") == 1
        assert "bridge ok" in listing
    finally:
        await relay.stop()
