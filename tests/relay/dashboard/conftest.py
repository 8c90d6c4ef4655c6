"""Dashboard fixtures: the relay app on a real database, and two caregivers with a home each."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
import os
from pathlib import Path
import re
from typing import Any

from aiohttp import DummyCookieJar
from cryptography.fernet import Fernet
import pytest
from selenium import webdriver
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import ALERT_KINDS, Admin
from relay.app import create_app
from relay.config import Settings
from relay.secretbox import SecretBox

from .helpers import Browser, Client


@dataclass
class World:
    """Ann watches Mum's flat; Bob watches Dad's house."""

    ann: int
    bob: int
    mum: str
    dad: str


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(db_url=db_url, notify_seconds=0)


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Any], engine: AsyncEngine, settings: Settings
) -> Client:
    test_client: Client = await aiohttp_client(
        create_app(settings, engine), cookie_jar=DummyCookieJar()
    )
    return test_client


@pytest.fixture
def admin(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> Admin:
    """Admin with the key the relay itself reads (the Me page decrypts the channel)."""
    key = Fernet.generate_key()
    monkeypatch.setenv("HPOLL_RELAY_SECRET_KEY", key.decode())
    return Admin(engine, SecretBox(key))


@pytest.fixture
async def world(admin: Admin) -> World:
    ann = await admin.add_caregiver("Ann", "json://127.0.0.1:9/")
    bob = await admin.add_caregiver("Bob", "json://127.0.0.1:9/")
    mum = await admin.add_home("Mum's flat", "Europe/Berlin")
    dad = await admin.add_home("Dad's house", "America/New_York")
    await admin.subscribe(mum.id, "Ann", "08:00", list(ALERT_KINDS))
    await admin.subscribe(dad.id, "Bob", None, list(ALERT_KINDS))
    return World(ann, bob, mum.id, dad.id)


@pytest.fixture
async def ann(client: Client, engine: AsyncEngine, world: World) -> Browser:
    browser = Browser(client)
    page = await browser.sign_in(engine, world.ann)
    assert page.status == 303, page.text
    return browser


@pytest.fixture
async def bob(client: Client, engine: AsyncEngine, world: World) -> Browser:
    browser = Browser(client)
    assert (await browser.sign_in(engine, world.bob)).status == 303
    return browser


#: Screenshots of every browser a failing test had open (gitignored; CI keeps the folder).
ARTIFACTS = Path(
    os.environ.get("HPOLL_TEST_ARTIFACTS", Path(__file__).parents[3] / "test-artifacts")
)
_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture
def browsers(request: pytest.FixtureRequest) -> Iterator[list[webdriver.Chrome]]:
    """Browsers a test opens; all closed after it, screenshotted first if it failed."""
    opened: list[webdriver.Chrome] = []
    yield opened
    if request.node.stash.get(_FAILED, False):
        folder = ARTIFACTS / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        for index, driver in enumerate(opened):
            path = folder / f"{name}-{index}.png"
            driver.save_screenshot(str(path))
            print(f"screenshot of the failing page: {path}")
    for driver in opened:
        driver.quit()
