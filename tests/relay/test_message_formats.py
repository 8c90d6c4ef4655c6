"""Which format each service gets, and how a name from the home is cleaned."""

from __future__ import annotations

import apprise
import pytest

from relay.messages.document import Document, Para, entries, escape_markdown, render
from relay.messages.words import clean, device_label
from relay.notifications.send import SENDER, service_format


@pytest.mark.parametrize(
    ("url", "form"),
    [
        ("mailtos://user:secret@example.com?to=ann@example.com", "email"),
        ("json://hooks.example/care", "plain"),
        ("json://hooks.example/care?format=markdown", "markdown"),
        ("ntfy://ntfy.example/mum", "plain"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#care", "markdown"),
        ("tgram://123456789:abcdefg_hijklmnop/12345", "markdown"),
        ("pover://u" + "a" * 29 + "@t" + "b" * 29, "plain"),
    ],
)
def test_each_service_gets_the_format_it_renders(url: str, form: str) -> None:
    service = apprise.Apprise.instantiate(url, asset=SENDER)
    assert service is not None
    assert service_format(service) == form


def test_names_from_the_home_are_cleaned() -> None:
    assert clean("Hall\nsensor\x1b[31m") == "Hall sensor [31m"
    assert clean("\u202eevil\u202c name") == "evil name"  # no direction tricks
    assert clean("x" * 200).endswith("…")
    assert len(clean("x" * 200)) == 80
    assert clean("see http://evil.example") == "see http:\u200b//evil.example"
    assert clean("   ") == "unnamed"
    assert clean(None, "") == ""


def test_a_device_is_said_as_what_it_is_and_where() -> None:
    assert device_label("Hall sensor", "Hallway", "motion_sensor") == (
        'the motion sensor "Hall sensor" in the Hallway'
    )
    assert device_label("Bathroom sensor", "Bathroom", "motion_sensor") == (
        'the motion sensor "Bathroom sensor"'
    )
    assert device_label("Dimmer", "Anna's room", "switch") == (
        'the light switch "Dimmer" in Anna\'s room'
    )
    assert device_label("Lamp", None, "device") == 'the device "Lamp"'


def test_markdown_escapes_what_would_become_markup() -> None:
    assert escape_markdown("[a](b) <i> & *x* `y` _z_ #") == (
        r"\[a\]\(b\) &lt;i&gt; &amp; \*x\* \`y\` \_z\_ \#"
    )
    assert escape_markdown("1. first") == r"1\. first"
    assert escape_markdown("- item") == r"\- item"


def test_one_entry_is_a_sentence_several_are_a_list() -> None:
    one = Document("t", "normal", entries([("only",)]))
    several = Document("t", "normal", entries([("a",), ("b",)]))
    assert isinstance(one.blocks[0], Para)
    assert "<ul" not in render(one, "email")
    assert "<ul" in render(several, "email")
    assert render(several, "plain") == "- a\n- b"
