"""``hpoll-relay caregiver invite`` and ``caregiver role``, as an operator runs them."""

from __future__ import annotations

import asyncio
import re

from cryptography.fernet import Fernet
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import Admin
from relay.cli import main
from relay.http.dashboard.accounts import AccountError, Accounts
from relay.secretbox import SecretBox
from tests.relay.sink import running_sink


async def test_invite_sends_a_one_time_link_through_the_caregivers_channel(
    db_url: str,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = Fernet.generate_key()
    monkeypatch.setenv("HPOLL_RELAY_SECRET_KEY", key.decode())
    monkeypatch.setenv("HPOLL_RELAY_PUBLIC_URL", "https://care.example/")
    admin = Admin(engine, SecretBox(key))
    accounts = Accounts(engine)
    with running_sink() as sink:
        ann = await admin.add_caregiver("Ann", sink.url)
        invite = ["--db", db_url, "caregiver", "invite", "Ann"]
        assert await asyncio.to_thread(main, invite) == 0
        assert capsys.readouterr().out.startswith("sent to Ann (valid until ")
        message = sink.received[0]["message"]
    link = re.search(r"https://care\.example/signin/(\S+)", message)
    assert link, message
    assert await accounts.redeem_link(link.group(1)) == ann
    with pytest.raises(AccountError):
        await accounts.redeem_link(link.group(1))
    # Handed over in person instead: printed, nothing sent (the sink is gone).
    assert await asyncio.to_thread(main, [*invite, "--print"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("https://care.example/signin/")
    assert await accounts.redeem_link(printed.rsplit("/", 1)[1]) == ann
    # A channel that fails says so, and exits non-zero.
    assert await asyncio.to_thread(main, invite) == 1
    assert capsys.readouterr().out.startswith("FAILED: ")
    assert await asyncio.to_thread(main, [*invite[:-1], "Nobody"]) == 2


async def test_role_makes_an_operator(
    db_url: str, engine: AsyncEngine, admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    await admin.add_caregiver("Ann", "json://127.0.0.1:9/")
    role = ["--db", db_url, "caregiver", "role", "Ann"]
    assert await asyncio.to_thread(main, [*role, "operator"]) == 0
    assert "Ann is now operator (sees every home)" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["--db", db_url, "caregiver", "list"]) == 0
    assert "(operator)" in capsys.readouterr().out
    assert await asyncio.to_thread(main, [*role, "caregiver"]) == 0
    assert await asyncio.to_thread(main, ["--db", db_url, "caregiver", "list"]) == 0
    assert "(operator)" not in capsys.readouterr().out
