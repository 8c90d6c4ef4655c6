"""The dashboard in a real headless Chromium against the real relay process: sign in through
the link the relay sends, see the homes, open one, acknowledge an alert, fail to open another
caregiver's home, sign out; axe-core finds no WCAG 2.1 AA violation on any page, at phone
width (390 px) and desktop width; the status reads without JavaScript; the table refreshes
without a reload.

``HPOLL_DOCS_SCREENSHOTS=1`` also writes the README's screenshots into docs/.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
import os
from pathlib import Path
import re
import sqlite3
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import update

from relay.clock import utcnow
from relay.storage.db import create_engine
from relay.storage.models import HOMES
from tests.relay.sink import Sink, running_sink
from tests.relay_server import RelayServer

from .browser import accessibility_violations, chromium, desktop_width, phone_width
from .helpers import add_activity, add_device, open_alert, reported

DOCS = Path(__file__).parents[3] / "docs"
DAY = ((7, "Bedroom"), (8, "Kitchen"), (12, "Kitchen"), (19, "Living room"))


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as found:
        yield found


@pytest.fixture
def relay(tmp_path: Path, sink: Sink) -> Iterator[RelayServer]:
    server = RelayServer(tmp_path, HPOLL_RELAY_NOTIFY_SECONDS="0")
    yield server  # started by the test once its data is in
    server.stop()


def _seed(server: RelayServer, sink: Sink) -> dict[str, str]:
    """Ann watches two homes (one with an urgent alert), Bob one; 28 days of activity."""
    mum, _ = server.add_home("Mum's flat", "Europe/Berlin")
    aunt, _ = server.add_home('Aunt <b>Ida</b> "cottage"', "Europe/Berlin")
    dad, _ = server.add_home("Dad's house", "America/New_York")
    server.cli("caregiver", "add", "Ann", "--apprise", sink.url)
    server.cli("caregiver", "add", "Bob", "--apprise", sink.url)
    server.cli("subscribe", mum, "Ann", "--summary-at", "08:00")
    server.cli("subscribe", aunt, "Ann")
    server.cli("subscribe", dad, "Bob")

    async def fill() -> None:
        engine = create_engine(server.db_url)
        zone, now = ZoneInfo("Europe/Berlin"), utcnow()
        today = now.astimezone(zone).date()
        for home in (mum, aunt):
            for back in range(28, -1, -1):
                day = today - timedelta(days=back)
                for hour, room in (
                    (7, "Bedroom"),
                    (8, "Kitchen"),
                    (12, "Kitchen"),
                    (19, "Living room"),
                ):
                    at = datetime(day.year, day.month, day.day, hour, 10, tzinfo=zone).astimezone(
                        UTC
                    )
                    if at < now - timedelta(hours=3):
                        await add_activity(engine, home, room, at, 2 + back % 4)
            # The last three hours, whatever the time of day: the timeline always has rows; and
            # a movement now: today has activity even just after midnight.
            last_hours = ((170, "Bedroom"), (150, "Bathroom"), (95, "Hall"), (40, "Hall"))
            for minutes, room in (*last_hours, (0, "Hall")):
                await add_activity(engine, home, room, now - timedelta(minutes=minutes), 3)
            await reported(engine, home)
        await add_device(engine, mum, name="Hall sensor", battery=7, battery_state="low")
        await add_device(
            engine,
            mum,
            name="Kitchen sensor",
            room="Kitchen",
            connectivity="disconnected",
            offline_since=now - timedelta(hours=3),
        )
        await add_device(engine, aunt, name="<script>alert(1)</script>", room="Hall")
        await open_alert(engine, mum)
        await open_alert(engine, dad)
        async with engine.begin() as connection:
            await connection.execute(update(HOMES).values(created_at=now - timedelta(days=60)))
        await engine.dispose()

    asyncio.run(fill())
    server.start()
    server.env["HPOLL_RELAY_PUBLIC_URL"] = server.url  # where invitations point
    return {"mum": mum, "aunt": aunt, "dad": dad}


async def _reported(server: RelayServer, home_id: str, ago: timedelta) -> None:
    engine = create_engine(server.db_url)
    await reported(engine, home_id, ago)
    await engine.dispose()


def _wait_for(driver: webdriver.Chrome, text: str) -> None:
    # While the page is replaced (a form posted, a link followed), the body read may belong to
    # the page going away: Chromium then answers "Node with given id does not belong to the
    # document", a WebDriverException, not the stale element the wait already ignores. Ask again;
    # a text that never comes still fails the wait after 15 s.
    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(
        expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "body"), text)
    )


def _check_accessibility(driver: webdriver.Chrome, where: str) -> None:
    assert accessibility_violations(driver) == [], where


def _invite_link(server: RelayServer, sink: Sink, name: str) -> str:
    before = len(sink.received)
    printed = server.cli("caregiver", "invite", name)
    assert printed.startswith(f"sent to {name}")
    message = sink.received[before]["message"]
    found = re.search(r"https?://\S+/signin/\S+", message)
    assert found, message
    return found.group(0)


def test_a_caregivers_visit(  # noqa: PLR0915 (one visit, step by step)
    relay: RelayServer, sink: Sink, browsers: list[webdriver.Chrome]
) -> None:
    homes = _seed(relay, sink)
    driver = chromium()
    browsers.append(driver)
    # Sign in through the link the relay sent through Ann's own channel.
    driver.get(_invite_link(relay, sink, "Ann"))
    _check_accessibility(driver, "link page")
    driver.find_element(By.ID, "use-link").click()
    _wait_for(driver, "Homes")
    assert driver.current_url == f"{relay.url}/"
    table = driver.find_element(By.CSS_SELECTOR, "table.homes").text
    assert "Mum's flat" in table
    assert 'Aunt <b>Ida</b> "cottage"' in table  # the name as text, not markup
    assert "Dad's house" not in table
    assert "Needs attention" in table
    assert "not acknowledged" in table
    _check_accessibility(driver, "Homes")
    if os.environ.get("HPOLL_DOCS_SCREENSHOTS"):
        driver.save_screenshot(str(DOCS / "dashboard-homes.png"))

    # The table refreshes without a reload once something changes.
    driver.execute_script("window.hpollMarker = 1;")
    relay.cli("ack", "2", "--by", "Bob")  # Dad's alert: nothing Ann sees changes ...
    relay.cli("home", "set", homes["aunt"], "--stale-minutes", "1")  # ... but this does
    asyncio.run(_reported(relay, homes["aunt"], timedelta(minutes=10)))
    driver.execute_script("document.dispatchEvent(new Event('visibilitychange'));")
    _wait_for(driver, "Silent since")
    assert driver.execute_script("return window.hpollMarker;") == 1

    # Open Mum's home and acknowledge the alert.
    driver.find_element(By.LINK_TEXT, "Mum's flat").click()
    _wait_for(driver, "Four weeks, hour by hour")
    assert driver.find_elements(By.CSS_SELECTOR, ".timeline .room .on")  # today has activity
    _check_accessibility(driver, "Home")
    assert (
        "Hall sensor"
        in driver.find_element(By.ID, "devices-title").find_element(By.XPATH, "..").text
    )
    if os.environ.get("HPOLL_DOCS_SCREENSHOTS"):
        driver.set_window_size(1280, 2400)
        driver.save_screenshot(str(DOCS / "dashboard-home.png"))
        driver.set_window_size(1280, 900)
    driver.find_element(By.CSS_SELECTOR, "#alerts button").click()
    _wait_for(driver, "acknowledged by Ann")
    with sqlite3.connect(relay.db_path) as connection:
        state = connection.execute(
            "SELECT state, acked_by, next_escalation_at FROM alerts WHERE home_id = ?",
            (homes["mum"],),
        ).fetchone()
    connection.close()
    assert state == ("acked", "Ann", None)

    # Another caregiver's home reads as no home at all.
    driver.get(f"{relay.url}/homes/{homes['dad']}")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Not found"
    assert "Dad" not in driver.page_source

    driver.get(f"{relay.url}/me")
    _check_accessibility(driver, "Me")
    assert "Sign out everywhere" in driver.page_source

    # Phone width: every page still passes, and the Homes table becomes cards.
    phone_width(driver)
    for path in ("/", f"/homes/{homes['mum']}", "/me"):
        driver.get(relay.url + path)
        _check_accessibility(driver, f"{path} at 390 px")
        assert driver.execute_script("return window.innerWidth;") == 390
        width = driver.execute_script("return document.documentElement.scrollWidth;")
        assert width <= 390, (path, width)  # nothing wider than the phone (the heatmap scrolls)
    driver.get(relay.url + "/")
    if os.environ.get("HPOLL_DOCS_SCREENSHOTS"):
        driver.save_screenshot(str(DOCS / "dashboard-phone.png"))

    # Sign out: the pages are gone until the next link.
    desktop_width(driver)
    driver.find_element(By.CSS_SELECTOR, "header button").click()
    _wait_for(driver, "You are signed out")
    _check_accessibility(driver, "sign-in page")
    driver.get(f"{relay.url}/homes/{homes['mum']}")
    assert driver.current_url == f"{relay.url}/signin"


def test_status_reads_without_javascript(
    relay: RelayServer, sink: Sink, browsers: list[webdriver.Chrome]
) -> None:
    _seed(relay, sink)
    driver = chromium(javascript=False)
    browsers.append(driver)
    driver.get(_invite_link(relay, sink, "Ann"))
    driver.find_element(By.ID, "use-link").click()
    _wait_for(driver, "Homes")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.homes tbody tr")
    assert [row.find_element(By.CSS_SELECTOR, ".badge").text for row in rows] == [
        "Needs attention",
        "All normal",
    ]
