"""Every message of scripted days, in every format, against checked-in golden files (SQLite and
PostgreSQL write the same words); the summaries' numbers against the script's ground truth;
hostile names that never become links, tags or emphasis.

Regenerate the golden files after a deliberate change of wording or layout with
``HPOLL_UPDATE_GOLDEN=1`` and read the diff as a caregiver would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from html.parser import HTMLParser
import os
from pathlib import Path
import re

from apprise import NotifyFormat
from apprise.conversion import convert_between
from cryptography.fernet import Fernet
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.messages.document import Document, from_json, render, title_for
from relay.messages.facts import SummaryFacts
from relay.notifications.plan import NotifySettings
from relay.notifications.summary import Period, gather
from relay.secretbox import SecretBox
from tests.relay import scripted_days
from tests.relay.notify_harness import Clock, Relay
from tests.relay.scripted_days import ScriptedHome, Truth, Written, local, outbox

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("HPOLL_UPDATE_GOLDEN") == "1"
PUBLIC_URL = "https://relay.example"

type Script = Callable[[Relay], Awaitable[ScriptedHome]]


def relay_for(engine: AsyncEngine) -> Relay:
    return Relay(
        engine,
        SecretBox(Fernet.generate_key()),
        Clock(local(30, "12:00")),
        NotifySettings(public_url=PUBLIC_URL),
    )


def email_text(html: str) -> str:
    """The plain-text part Apprise puts beside the HTML part of an e-mail."""
    text: str = convert_between(NotifyFormat.HTML, NotifyFormat.TEXT, html)
    return text


def renderings(document: Document) -> dict[str, str]:
    """A message in every format it can be sent in (with its title on top)."""
    html = render(document, "email")
    return {
        "email.html": html,
        "email.txt": f"Subject: {document.title}\n\n{email_text(html)}\n",
        "txt": f"{document.title}\n\n{render(document, 'plain')}\n",
        "md": f"{title_for(document, 'markdown')}\n\n{render(document, 'markdown')}\n",
    }


def _mask(text: str) -> str:
    return re.sub(r"code=[\w-]+", "code=CODE", text)


def golden_files(written: list[Written]) -> dict[str, str]:
    files = {}
    for index, message in enumerate(written, 1):
        who = re.sub(r"\W+", "_", message.caregiver).strip("_").lower()
        stem = f"{index:02d}-{who}-{message.kind}"
        for ext, text in renderings(from_json(message.content)).items():
            files[f"{stem}.{ext}"] = _mask(text)
    return files


SCRIPTS: dict[str, Script] = {
    "ordinary_two_days": scripted_days.ordinary_two_days,
    "hostile_names": scripted_days.hostile_names,
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
async def test_every_message_of_a_scripted_day_matches_its_golden_files(
    engine: AsyncEngine, name: str
) -> None:
    relay = relay_for(engine)
    await SCRIPTS[name](relay)
    files = golden_files(await outbox(relay))
    folder = GOLDEN / name
    if UPDATE:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():
            stale.unlink()
        for file_name, text in files.items():
            (folder / file_name).write_text(text, encoding="utf-8")
    expected = {path.name: path.read_text(encoding="utf-8") for path in folder.iterdir()}
    assert sorted(files) == sorted(expected)
    for file_name, text in files.items():
        assert text == expected[file_name], f"{name}/{file_name} differs from its golden file"


async def test_the_ordinary_days_say_every_kind_of_message(engine: AsyncEngine) -> None:
    relay = relay_for(engine)
    await scripted_days.ordinary_two_days(relay)
    written = await outbox(relay)
    kinds = [(m.caregiver, m.kind, m.content["title"]) for m in written]
    assert {kind for _, kind, _ in kinds} == {
        "summary",
        "alerts",
        "alert",
        "resolved",
        "acknowledged",
    }
    titles = [title for _, _, title in kinds]
    # The urgent alarm, its escalation, the blind spell during it, and its end, to each.
    assert "URGENT \u2013 Mum's flat: no movement since 10:15" in titles
    assert any("nobody has answered for 15 minutes" in t for t in titles)
    assert any(t.endswith("we cannot see right now") for t in titles)
    assert ("Ann", "acknowledged", "Mum's flat: Ben is on it") in kinds
    over = [(who, t) for who, kind, t in kinds if kind == "resolved"]
    assert over == [
        ("Ann", "Mum's flat: over \u2013 no movement since 10:15"),
        ("Ben", "Mum's flat: over \u2013 no movement since 10:15"),
    ]
    # Nobody reads an operator's command, and every urgent alarm has its own link.
    for message in written:
        plain = render(from_json(message.content), "plain")
        assert "hpoll-relay" not in plain
        if message.kind == "alert" and "nobody" not in plain.lower():
            continue
    links = {
        m.caregiver: b["url"]
        for m in written
        if m.kind == "alert"
        for b in m.content["blocks"]
        if "button" in b
    }
    assert set(links) == {"Ann", "Ben"}
    assert links["Ann"] != links["Ben"]


# -- the summaries' numbers against the script ---------------------------------------------


def _expected(truth: Truth, start: datetime, end: datetime) -> dict[str, object]:
    """The summary's numbers computed the slow, obvious way: minute by minute."""
    assert truth.first_report is not None
    seen_from = max(start, truth.first_report)
    moves = [(at, room, n) for at, room, n in truth.movements if seen_from <= at < end]
    rooms: dict[str, int] = {}
    for _, room, n in moves:
        rooms[room] = rooms.get(room, 0) + n

    def blind(minute: datetime) -> bool:
        return any(a <= minute < (b or end) for a, b in truth.blind)

    moved = {at for at, _, _ in truth.movements}
    best: tuple[datetime, datetime] | None = None
    run_start: datetime | None = seen_from
    minute = seen_from
    while minute <= end:
        if minute == end or minute in moved or blind(minute):
            longer = best is None or (run_start and minute - run_start > best[1] - best[0])
            if run_start is not None and minute > run_start and longer:
                best = (run_start, minute)
            run_start = None if blind(minute) else minute
        elif run_start is None:
            run_start = minute
        minute += timedelta(minutes=1)
    spans = [(max(a, seen_from), min(b or end, end)) for a, b in truth.blind]
    unseen = sum((b - a for a, b in spans if b > a), timedelta(0))
    return {
        "seen_from": seen_from,
        "count": sum(n for _, _, n in moves),
        "first": (moves[0][0], moves[0][1]),
        "last": (moves[-1][0], moves[-1][1]),
        "rooms": rooms,
        "longest_quiet": best,
        "unseen": unseen,
    }


def _actual(fact: SummaryFacts) -> dict[str, object]:
    assert fact.first is not None
    assert fact.last is not None
    return {
        "seen_from": fact.seen_from,
        "count": fact.count,
        "first": (fact.first.at, fact.first.room),
        "last": (fact.last.at, fact.last.room),
        "rooms": fact.rooms,
        "longest_quiet": fact.longest_quiet,
        "unseen": fact.unseen(),
    }


async def test_summary_numbers_match_the_scripted_ground_truth(engine: AsyncEngine) -> None:
    relay = relay_for(engine)
    home = await scripted_days.ordinary_two_days(relay)
    for start, end in (
        (local(30, "08:00"), local(1, "08:00")),
        (local(1, "08:00"), local(2, "08:00")),
    ):
        async with engine.connect() as connection:
            [fact] = await connection.run_sync(gather, [Period(home.home_id, start, end)])
        assert _actual(fact) == _expected(home.truth, start, end)
    # The second day could not be seen for 34 min (bridge) and 70 min (no reports), and the
    # longest quiet time is the night, not the stretch that ran into the bridge outage.
    assert _expected(home.truth, local(1, "08:00"), local(2, "08:00"))["unseen"] == timedelta(
        minutes=104
    )


# -- hostile names -----------------------------------------------------------------------------


class _Tags(HTMLParser):
    """Every tag and link target in an HTML text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.hrefs += [value or "" for key, value in attrs if key == "href"]


def _html_of(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    return parser


async def test_hostile_names_stay_plain_text_in_every_format(engine: AsyncEngine) -> None:
    relay = relay_for(engine)
    await scripted_days.hostile_names(relay)
    written = await outbox(relay)
    assert {m.kind for m in written} >= {"summary", "alerts", "alert", "resolved"}
    ours = {"a", "body", "h2", "head", "html", "li", "meta", "p", "strong", "table", "td"}
    ours |= {"title", "tr", "ul"}
    for message in written:
        document = from_json(message.content)
        html = render(document, "email")
        tags = _html_of(html)
        assert tags.tags <= ours, message.content["title"]
        assert all(href.startswith(PUBLIC_URL) for href in tags.hrefs)
        # Markdown as a Markdown service would render it (Apprise's own converter).
        for markdown in (render(document, "markdown"), title_for(document, "markdown")):
            shown = convert_between(NotifyFormat.MARKDOWN, NotifyFormat.HTML, markdown)
            rendered = _html_of(shown)
            assert rendered.tags <= {"p", "ul", "li", "strong", "em", "a"}, shown
            assert all(href.startswith(PUBLIC_URL) for href in rendered.hrefs), shown
        plain = render(document, "plain")
        assert "http://evil" not in plain  # no service links it by itself
        assert "evil.example" in plain or "evil.example" not in str(message.content)
    # The names are all still there, as the characters they are.
    summary = next(from_json(m.content) for m in written if m.kind == "summary")
    plain = render(summary, "plain")
    assert "Mum's <b>flat</b> &amp; co" in plain
    assert "[Tap here to acknowledge](http:\u200b//evil.example/phish)" in plain
    html = render(summary, "email")
    assert "&lt;b&gt;flat&lt;/b&gt; &amp;amp; co" in html
