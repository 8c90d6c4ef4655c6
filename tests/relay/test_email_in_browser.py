"""One real e-mail of every kind, sent through Apprise's ``mailto://`` to a local SMTP server
(aiosmtpd, loopback only) and opened in a real headless Chromium, as a caregiver would see it.

The screenshots are kept in ``test-artefacts/email/`` (not committed; two of them are copied to
docs/ for the README).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
import shutil
import socket
from typing import Any

from aiosmtpd.controller import Controller
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from relay.messages.document import Document, from_json, render
from relay.notifications.send import deliver
from relay.storage.db import create_engine, upgrade
from tests.relay import scripted_days
from tests.relay.scripted_days import Written, outbox
from tests.relay.test_messages_golden import PUBLIC_URL, email_text, relay_for

ARTEFACTS = Path(__file__).parents[2] / "test-artefacts" / "email"

#: One message of each kind from the ordinary scripted days (name, which one).
KINDS: dict[str, Callable[[Written], bool]] = {
    "summary": lambda m: m.kind == "summary" and "Needs attention" in m.content["title"],
    "alerts": lambda m: m.kind == "alerts" and "to check" in m.content["title"],
    "alerts-over": lambda m: m.kind == "alerts" and "over" in m.content["title"],
    "urgent": lambda m: m.kind == "alert" and "nobody has answered" in m.content["title"],
    "urgent-blind": lambda m: m.kind == "alert" and "cannot see" in m.content["title"],
    "acknowledged": lambda m: m.kind == "acknowledged",
    "resolved": lambda m: m.kind == "resolved",
}


class _Inbox:
    """An SMTP server's handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(message)
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[_Inbox, int]]:
    handler = _Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.fail("chromium and chromedriver are needed: run scripts/ensure-browser.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(str(shutil.which("chromedriver"))))
    try:
        yield driver
    finally:
        driver.quit()


def _parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    # SMTP carries lines ended by CRLF.
    return (
        str(plain.get_content()).replace("\r\n", "\n"),
        str(html.get_content()).replace("\r\n", "\n"),
    )


def _screenshot(driver: webdriver.Chrome, html_file: Path, png: Path) -> None:
    driver.set_window_size(720, 900)
    driver.get(html_file.as_uri())
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(720, min(height + 140, 4000))
    assert driver.save_screenshot(str(png))


async def test_one_real_email_of_every_kind_rendered_in_chromium(
    tmp_path: Path,
    inbox: tuple[_Inbox, int],
    browser: webdriver.Chrome,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HPOLL_RELAY_ALLOW_PRIVATE_TARGETS", "1")  # the SMTP server is local
    handler, port = inbox
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    await upgrade(engine)
    try:
        relay = relay_for(engine)
        await scripted_days.ordinary_two_days(relay)
        written = await outbox(relay)
    finally:
        await engine.dispose()
    chosen: dict[str, Document] = {
        name: from_json(next(m for m in written if wanted(m)).content)
        for name, wanted in KINDS.items()
    }
    url = f"mailto://127.0.0.1:{port}?from=alerts@relay.example&to=ann@example.com"
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for name, document in chosen.items():
        delivery = await deliver(url, document)
        assert delivery.ok, delivery.detail
        message = handler.received[-1]
        assert message["From"] == "hpoll <alerts@relay.example>"
        assert message["Subject"] == document.title
        assert message.get_content_type() == "multipart/alternative"
        text, html = _parts(message)
        assert html.strip() == render(document, "email").strip()
        assert text.strip() == email_text(html).strip()
        html_file = ARTEFACTS / f"{name}.html"
        html_file.write_text(html, encoding="utf-8")
        _screenshot(browser, html_file, ARTEFACTS / f"{name}.png")
        # What the reader sees: the title in the band, and the link a real, clickable one.
        cells = [cell.text for cell in browser.find_elements(By.TAG_NAME, "td")]
        assert document.title in cells
        buttons = browser.find_elements(By.LINK_TEXT, "I am on it")
        if name == "urgent":
            [button] = buttons
            assert button.get_attribute("href").startswith(f"{PUBLIC_URL}/api/v1/alerts/")
            assert button.is_displayed()
            assert button.get_attribute("href") in text  # the plain part carries it too
        else:
            assert buttons == []
    assert len(handler.received) == len(KINDS)
