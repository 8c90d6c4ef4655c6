"""Which format each service gets, how a name from the home is cleaned, and what an alarm
from the home's own activity check says in each format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import html
import re
from zoneinfo import ZoneInfo

import apprise
import pytest

from relay.messages.compose import digest, urgent
from relay.messages.document import Document, Para, entries, escape_markdown, render
from relay.messages.facts import AlertFacts, HomeFacts, UrgentFacts
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


WHY = {
    "unusual_gap": "That is far longer than usual for Mum at this time of day: the alarm is "
    "raised after 2 hours 30 minutes without movement then.",
    "not_up": "Nobody seems to have got up: it is well past the time movement usually starts in "
    "Mum in the morning.",
    "one_sensor": "Since then only one sensor has noticed anything, on its own and for unusually "
    "long: more like a pet or a faulty sensor than a person, so it is not counted as someone "
    "moving.",
    "safety_net": "That is longer than the 2 hours 30 minutes without movement set for Mum.",
}


@pytest.mark.parametrize("reason", sorted(WHY))
@pytest.mark.parametrize("learning", [False, True])
def test_an_alarm_from_the_homes_verdict_says_why_in_every_format(
    reason: str, learning: bool
) -> None:
    zone = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    since = now - timedelta(hours=3)
    details = {
        "since": since.isoformat(),
        "reason": reason,
        "limit_minutes": 150,
        "learning": learning,
    }
    alert = AlertFacts(7, "inactivity", now, details, urgent=True)
    facts = UrgentFacts(
        HomeFacts("Mum", zone),
        alert,
        now,
        None,
        "https://relay.example/ack/x",
        None,
        timedelta(minutes=15),
    )
    document = urgent(facts)
    learning_line = "hpoll is still getting to know the habits of Mum (its first week)"
    for form in ("email", "plain", "markdown"):
        text = render(document, form)
        if form == "email":
            text = html.unescape(re.sub(r"<[^>]+>", "", text))
            text = re.sub(r"\s+", " ", text)
        elif form == "markdown":
            text = text.replace("\\", "")
        assert "No movement has been noticed in Mum since 11:00" in text, form
        assert WHY[reason] in text, form
        assert (learning_line in text) is learning, form
        assert f"({reason}, limit 150 minutes" in text, form


def test_an_alarm_without_a_verdict_gives_no_reason() -> None:
    """A home whose integration sends no verdict: the fixed rule, no invented 'why'."""
    zone = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    details = {"since": (now - timedelta(hours=3)).isoformat()}
    alert = AlertFacts(7, "inactivity", now, details, urgent=True)
    facts = UrgentFacts(HomeFacts("Mum", zone), alert, now, None, None, None, timedelta(minutes=15))
    text = render(urgent(facts), "plain")
    assert not any(why in text for why in WHY.values())
    assert "activity check" not in text


def test_a_digest_counts_its_homes_in_words() -> None:
    normal = Document("Mum: All normal", "normal", (Para(("All normal.",)),))
    worried = Document("Dad: Needs attention", "attention", (Para(("No movement.",)),))
    assert digest([normal]).title == "1 home: all normal"
    assert digest([normal, worried]).title == "2 homes: 1 needs attention"
