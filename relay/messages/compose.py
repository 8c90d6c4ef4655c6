"""What caregivers read: every kind of message, composed from plain facts (``facts.py``).

The wording rules are in docs/DESIGN.md ("Messages"): the point first, in everyday words; the
home's own time, dated where a day could be mistaken; what to do; technical detail last and
marked as such; never a command for the relay's operator; never unseen time counted as quiet.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .document import (
    Block,
    Button,
    Document,
    Heading,
    Inline,
    Items,
    Line,
    Tone,
    entries,
    para,
    strong as bold,
)
from .facts import (
    AlertFacts,
    Blindness,
    BlindSpell,
    DeviceFacts,
    HomeFacts,
    SummaryFacts,
    UrgentFacts,
)
from .words import (
    clean,
    clock,
    dated,
    device_effect,
    device_label,
    in_room,
    plural,
    span,
    when as said_when,
)

DASH = "\u2013"
#: What the relay's blindness means, said of the home (a reason a non-technical reader gets).
BLIND_WHY = {
    "bridge": "the Hue Bridge, the small hub the sensors talk to, has not answered since {since}",
    "reports": "nothing has arrived from the home since {since} (its internet or its "
    "Home Assistant may be down)",
}
#: The same, said of a spell that is over.
BLIND_WAS = {
    "bridge": "the Hue Bridge, the small hub the sensors talk to, was not answering",
    "reports": "nothing arrived from the home (its internet or its Home Assistant was down)",
}
BLIND_TECH = {
    "bridge": "the home's Home Assistant reports the Hue Bridge unreachable through the Hue cloud",
    "reports": "no report from the home's Home Assistant (expected at least every 10 minutes)",
}


def cannot_see(home: HomeFacts, blind: Blindness, now: datetime) -> Line:
    """'We cannot see whether anyone is moving in Mum's flat right now: …'."""
    why = BLIND_WHY.get(blind.cause, blind.cause + " since {since}")
    return (
        bold(f"We cannot see whether anyone is moving in {clean(home.name)} right now"),
        ": " + why.format(since=said_when(blind.since, home.zone, now)) + ".",
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# -- what an alert is about --------------------------------------------------------------------


def _device(alert: AlertFacts) -> str:
    details = alert.details
    return device_label(details.get("device"), details.get("room"), details.get("device_kind"))


def headline(alert: AlertFacts, home: HomeFacts, now: datetime) -> str:
    """What happened, in a few words (titles and summaries): 'no movement since 09:00'."""
    zone, details = home.zone, alert.details
    since = alert.detail_time() or alert.opened_at
    if alert.kind in ("battery", "offline") and "device" not in details:
        return str(details.get("text", alert.kind))  # an alert opened before relay 0003
    match alert.kind:
        case "inactivity":
            return f"no movement since {said_when(since, zone, now)}"
        case "quiet":
            return "much less activity than usual today"
        case "battery":
            state = "almost empty" if details.get("state") == "critical" else "low"
            return f"battery {state}: {clean(details.get('device'))}"
        case "offline":
            return f"{clean(details.get('device'))} not responding"
        case "stale":
            return "no news from the home"
        case "bridge":
            return "the Hue Bridge is not answering"
    return alert.kind


def _explain(alert: AlertFacts, home: HomeFacts, now: datetime) -> list[Block]:
    """What it means and what to do, for a non-urgent alert that opened."""
    zone, details = home.zone, alert.details
    since = alert.detail_time() or alert.opened_at
    at = said_when(since, zone, now)
    kind = details.get("device_kind")
    match alert.kind:
        case "battery":
            level = details.get("battery")
            state = "almost empty" if details.get("state") == "critical" else "low"
            effect = device_effect(kind)
            blocks: list[Block] = [
                para(f"The battery of {_device(alert)} is {state}."),
                para(
                    "Please replace it soon" + (f": when it runs out, {effect}." if effect else ".")
                ),
            ]
            tech = f"battery {level} %" if level is not None else "battery level not reported"
            blocks.append(para(f"Technical detail: {tech} ({details.get('state')}).", aside=True))
            return blocks
        case "offline":
            effect = device_effect(kind)
            return [
                para(f"{_capital(_device(alert))} has not been responding since {at}."),
                para(
                    "Check that it has power and is not too far from the hub or a Hue lamp"
                    + (f": while it is off, {effect}." if effect else ".")
                ),
                para("Technical detail: disconnected from the Zigbee network.", aside=True),
            ]
        case "stale":
            return [
                para(f"We have heard nothing from {clean(home.name)} since {at}."),
                para(*cannot_see(home, Blindness("reports", since), now)),
                para(
                    "Check that the home's internet works and that the computer running "
                    "Home Assistant is switched on. A call to check in is a good idea meanwhile."
                ),
                para(f"Technical detail: {BLIND_TECH['reports']}.", aside=True),
            ]
        case "bridge":
            return [
                para(*cannot_see(home, Blindness("bridge", since), now)),
                para(
                    "Check that the Hue Bridge has power and its network cable is plugged in. "
                    "A call to check in is a good idea meanwhile."
                ),
                para(f"Technical detail: {BLIND_TECH['bridge']}.", aside=True),
            ]
        case "quiet":
            return [
                para(
                    f"There has been much less movement in {clean(home.name)} today than "
                    "usual by this time of day."
                ),
                para(
                    "It may be nothing (a lazy day, a visitor), but it can also be the first "
                    "sign of an illness: a short call to check in is a good idea."
                ),
                para(
                    "Technical detail: fewer than half the movements of the same hours on this "
                    "home's past days.",
                    aside=True,
                ),
            ]
    return [para(_capital(headline(alert, home, now)) + ".")]


#: How a non-urgent alert's end is said: what is fine again, and what it was, how long.
OVER = {
    "battery": ("The battery of {device} is fine again.", "It was low {lasted}."),
    "offline": ("{Device} responds again.", "It was not responding {lasted}."),
    "stale": ("News from {home} arrives again: we can see again.", "Nothing arrived {lasted}."),
    "bridge": ("The Hue Bridge answers again: we can see again.", "It was not answering {lasted}."),
}


def _ended(alert: AlertFacts, home: HomeFacts, now: datetime) -> list[Block]:
    """When it ended (and how), for an alert that is over."""
    zone = home.zone
    start = alert.detail_time() or alert.opened_at
    end = alert.ended_at or now
    lasted = (
        f"for {span(end - start)}, from {said_when(start, zone, now)} to "
        f"{said_when(end, zone, now)}"
    )
    lines: list[Block]
    match alert.kind:
        case "quiet":
            lines = [
                para(
                    bold(f"Activity in {clean(home.name)} is no longer far below usual"),
                    f" ({said_when(end, zone, now)}).",
                ),
                para(f"It had been much lower than usual {lasted}."),
            ]
        case "inactivity":
            move = alert.new_movement
            where = f" {in_room(move.room)}" if move and move.room else ""
            lines = [
                para(
                    bold(f"Movement again at {said_when(move.at if move else end, zone, now)}"),
                    f"{where}.",
                ),
                para(f"There had been no movement {lasted}."),
            ]
        case kind if kind in OVER:
            back, was = OVER[kind]
            device = _device(alert) if alert.details.get("device") else ""
            words = {"device": device, "Device": _capital(device), "home": clean(home.name)}
            lines = [para(bold(back.format(**words))), para(was.format(lasted=lasted))]
        case _:
            lines = [para(f"Over ({lasted}).")]
    if alert.acked_by:
        at = f" at {said_when(alert.acked_at, zone, now)}" if alert.acked_at else ""
        lines.append(para(f"{clean(alert.acked_by)} was looking into it (acknowledged{at})."))
    return lines


def alert_title(alert: AlertFacts, home: HomeFacts, now: datetime) -> str:
    """The pair of titles: 'Mum's flat: <what>' and 'Mum's flat: over, <what>'."""
    prefix = "" if alert.ended_at is None else f"over {DASH} "
    return f"{clean(home.name)}: {prefix}{headline(alert, home, now)}"


def _footer(home_names: list[str], zone_name: str | None = None) -> str:
    homes = ", ".join(clean(name) for name in home_names)
    times = f" Times are {zone_name} time." if zone_name else ""
    return f"You receive this because you watch over {homes} with hpoll.{times}"


def alerts(items: list[tuple[AlertFacts, HomeFacts]], now: datetime) -> Document:
    """Non-urgent changes of one moment for one caregiver (opened and over), as one message."""
    homes = sorted({clean(home.name) for _, home in items})
    opened = [alert for alert, _ in items if alert.ended_at is None]
    tone: Tone = "attention" if opened else "good"
    zones = {home.zone.key for _, home in items}
    footer = _footer(homes, zones.pop() if len(zones) == 1 else None)

    def explain(alert: AlertFacts, home: HomeFacts) -> list[Block]:
        return _explain(alert, home, now) if alert.ended_at is None else _ended(alert, home, now)

    if len(items) == 1:
        alert, home = items[0]
        return Document(alert_title(alert, home, now), tone, tuple(explain(alert, home)), footer)
    blocks: list[Block] = []
    for alert, home in items:
        heading = alert_title(alert, home, now)
        if len(homes) == 1:
            heading = heading.removeprefix(f"{homes[0]}: ")
        blocks += [Heading(_capital(heading)), *explain(alert, home)]
    if len(homes) > 1:
        title = f"{plural(len(items), 'update')}: {', '.join(homes)}"
    elif not opened:
        title = f"{homes[0]}: {plural(len(items), 'thing')} fine again"
    else:
        title = f"{homes[0]}: {plural(len(items), 'thing')} to check"
    return Document(title, tone, tuple(blocks), footer)


# -- urgent ------------------------------------------------------------------------------------


def urgent(facts: UrgentFacts) -> Document:
    """An urgent alarm to one caregiver: what, since when, where last, what to do, the button."""
    home, alert, now = facts.home, facts.alert, facts.now
    name, zone = clean(home.name), home.zone
    since = alert.detail_time() or alert.opened_at
    what = headline(alert, home, now)
    title = f"URGENT {DASH} {name}: {what}"
    if facts.level:
        waited = span(facts.escalate_after * facts.level)
        title = f"URGENT {DASH} {name}: {what} (nobody has answered for {waited})"
    blocks: list[Block] = [
        para(
            bold(f"No movement has been noticed in {name} since {said_when(since, zone, now)}"),
            f" ({span(now - since)}).",
        )
    ]
    blocks += _why(alert, home)
    last = alert.last_movement
    if last and last.room:
        blocks.append(
            para(f"The last movement was {in_room(last.room)} at {clock(last.at, zone)}.")
        )
    if facts.blind is not None:
        blocks.append(para(*cannot_see(home, facts.blind, now)))
    if facts.level:
        waited = span(facts.escalate_after * facts.level)
        blocks.append(para(f"You are told because nobody answered this alarm for {waited}."))
    blocks += [
        Heading("What to do"),
        Items(
            (
                ("Call now.",),
                ("If nobody answers, go there or ask someone nearby who has a key to look in.",),
                ("If you find someone hurt, call the emergency services (112 in Europe).",),
            )
        ),
    ]
    if facts.ack_url:
        blocks.append(Button("I am on it", facts.ack_url))
        after = (
            f" Otherwise {clean(facts.next_in_line)} is told in {span(facts.escalate_after)}."
            if facts.next_in_line
            else ""
        )
        blocks.append(para(f"Press it when you are looking into it, so the others know.{after}"))
    elif facts.next_in_line:
        blocks.append(
            para(
                f"If nobody acknowledges within {span(facts.escalate_after)}, "
                f"{clean(facts.next_in_line)} is told."
            )
        )
    reason, limit = alert.details.get("reason"), alert.details.get("limit_minutes")
    judged = (
        f"; judged by the home's own activity check ({reason}, limit {limit} minutes"
        + (", still learning)" if alert.details.get("learning") else ")")
        if reason
        else ""
    )
    blocks.append(
        para(
            f"Technical detail: inactivity alarm {alert.alert_id}, opened "
            f"{dated(alert.opened_at, zone)}{judged}.",
            aside=True,
        )
    )
    return Document(title, "urgent", tuple(blocks), _footer([home.name], zone.key))


def _why(alert: AlertFacts, home: HomeFacts) -> list[Block]:
    """Why this silence is an alarm, as the home's own activity check judged it (alerts from a
    home without one carry no reason: the fixed limit speaks for itself)."""
    name, details = clean(home.name), alert.details
    minutes = details.get("limit_minutes")
    limit = span(timedelta(minutes=minutes)) if isinstance(minutes, int) and minutes > 0 else None
    match details.get("reason"):
        case "unusual_gap":
            why = f"That is far longer than usual for {name} at this time of day" + (
                f": the alarm is raised after {limit} without movement then." if limit else "."
            )
        case "not_up":
            why = (
                f"Nobody seems to have got up: it is well past the time movement usually starts "
                f"in {name} in the morning."
            )
        case "one_sensor":
            why = (
                "Since then only one sensor has noticed anything, on its own and for unusually "
                "long: more like a pet or a faulty sensor than a person, so it is not counted "
                "as someone moving."
            )
        case "safety_net":
            longest = limit or "longest time"
            why = f"That is longer than the {longest} without movement set for {name}."
        case _:
            return []
    blocks: list[Block] = [para(why)]
    if details.get("learning"):
        blocks.append(
            para(
                f"hpoll is still getting to know the habits of {name} (its first week): this "
                "alarm rests partly on general rules, not yet only on what is usual there."
            )
        )
    return blocks


def urgent_over(alert: AlertFacts, home: HomeFacts, now: datetime) -> Document:
    """The other half of the pair: the alarm is over (how, when, who was on it)."""
    return Document(
        alert_title(alert, home, now),
        "good",
        tuple(_ended(alert, home, now)),
        _footer([home.name], home.zone.key),
    )


def blind_during_alarm(
    alert: AlertFacts, home: HomeFacts, blind: Blindness, now: datetime
) -> Document:
    """While an alarm is open, the relay stopped seeing the home: say so at once."""
    since = alert.detail_time() or alert.opened_at
    blocks: list[Block] = [
        para(*cannot_see(home, blind, now)),
        para(
            f"The alarm is still open: no movement since {said_when(since, home.zone, now)}. "
            "Please call, and if nobody answers, go there or ask someone nearby to look in."
        ),
    ]
    if alert.acked_by:
        blocks.append(para(f"{clean(alert.acked_by)} is looking into it."))
    blocks.append(
        para(f"Technical detail: {BLIND_TECH.get(blind.cause, blind.cause)}.", aside=True)
    )
    return Document(
        f"URGENT {DASH} {clean(home.name)}: we cannot see right now",
        "urgent",
        tuple(blocks),
        _footer([home.name], home.zone.key),
    )


def ack_page(
    alert: AlertFacts, home: HomeFacts, caregiver: str, now: datetime, *, pressed: bool = False
) -> Document:
    """The page behind a caregiver's acknowledgement link: the home, what happened and since
    when, who is on it; ``pressed``: the caregiver just acknowledged."""
    name, zone = clean(home.name), home.zone
    who = clean(caregiver, "you")
    since = alert.detail_time() or alert.opened_at
    if alert.ended_at is not None:
        return Document(alert_title(alert, home, now), "good", tuple(_ended(alert, home, now)))
    blocks: list[Block] = [
        para(
            bold(f"No movement has been noticed in {name} since {dated(since, zone)}"),
            f" ({span(now - since)}).",
        )
    ]
    if pressed:
        blocks.append(
            para(
                bold(f"Thank you, {who}."),
                " The others who were told know that you are on it; nobody else will be called.",
            )
        )
    elif alert.acked_by:
        at = said_when(alert.acked_at or now, zone, now)
        blocks.append(para(bold(f"{clean(alert.acked_by)} is looking into it"), f" (since {at})."))
    else:
        blocks.append(
            para(
                f"This link is yours, {who}. Press the button when you are looking into it: the "
                "others who were told will know, and nobody else will be called."
            )
        )
    blocks.append(para(f"Times are {zone.key} time.", aside=True))
    return Document(f"{name}: {headline(alert, home, now)}", "urgent", tuple(blocks))


def acknowledged(alert: AlertFacts, home: HomeFacts, now: datetime) -> Document:
    """To the others who were told: someone is on it."""
    who = clean(alert.acked_by, "Someone")
    at = said_when(alert.acked_at or now, home.zone, now)
    return Document(
        f"{clean(home.name)}: {who} is on it",
        "attention",
        (
            para(bold(f"{who} is looking into it"), f" (acknowledged at {at})."),
            para(f"The alarm: {headline(alert, home, now)}. Nobody else will be called."),
        ),
        _footer([home.name], home.zone.key),
    )


# -- summaries ---------------------------------------------------------------------------------


def concerns(facts: SummaryFacts, now: datetime) -> list[str]:
    """What needs attention, most serious first (empty: all normal). Uses only what the alert
    rules would alert on (the facts were read with the same thresholds)."""
    found = []
    if facts.blind_now is not None:
        found.append("we cannot see right now")
    if facts.seen_from is not None and facts.count == 0:
        found.append("no movement")
    open_alarms = [a for a in facts.incidents if a.urgent and a.ended_at is None]
    if open_alarms:
        found.append("an alarm is still open")
    critical = [b for b in facts.batteries if b.battery_state == "critical"]
    if critical:
        found.append(plural(len(critical), "battery", "batteries") + " almost empty")
    low = len(facts.batteries) - len(critical)
    if low:
        found.append(plural(low, "battery", "batteries") + " low")
    if facts.offline:
        found.append(plural(len(facts.offline), "device") + " not responding")
    return found


def _incident_line(alert: AlertFacts, home: HomeFacts) -> Line:
    zone = home.zone
    start = alert.detail_time() or alert.opened_at
    what = _capital(headline(alert, home, start))
    if alert.kind == "inactivity":
        what = "Alarm: no movement"
    parts: list[Inline] = [bold(what)]
    if alert.ended_at is None:
        parts.append(f", since {dated(start, zone)}; still open")
    else:
        parts.append(
            f" for {span(alert.ended_at - start)}, from {dated(start, zone)} "
            f"to {dated(alert.ended_at, zone)}"
        )
    if alert.acked_by:
        at = f" at {clock(alert.acked_at, zone)}" if alert.acked_at else ""
        parts.append(f"; {clean(alert.acked_by)} was on it{at}")
    if alert.new_movement is not None:
        room = alert.new_movement.room
        parts.append(
            f"; movement again at {clock(alert.new_movement.at, zone)}"
            + (f" {in_room(room)}" if room else "")
        )
    return (*parts, ".")


def _blind_line(spell: BlindSpell, facts: SummaryFacts) -> Line:
    zone = facts.home.zone
    start = max(spell.start, facts.start)
    if spell.end is None:
        why = BLIND_WHY.get(spell.cause, spell.cause + " since {since}")
        return (bold("We cannot see"), ": " + why.format(since=dated(start, zone)) + ".")
    return (
        bold(f"We could not see for {span(spell.end - start)}"),
        f", {dated(start, zone)} to {dated(spell.end, zone)}: "
        f"{BLIND_WAS.get(spell.cause, spell.cause)}.",
    )


def _device_line(device: DeviceFacts, zone_now: tuple[HomeFacts, datetime]) -> Line:
    home, now = zone_now
    label = device_label(device.name, device.room, device.kind)
    if device.offline_since is not None:
        return (
            f"{_capital(label)}: ",
            bold("not responding"),
            f" since {said_when(device.offline_since, home.zone, now)}.",
        )
    state = "almost empty" if device.battery_state == "critical" else "low"
    level = f" ({device.battery} %)" if device.battery is not None else ""
    return (f"{_capital(label)}: ", bold(f"battery {state}"), f"{level}; please replace it soon.")


def summary(facts: SummaryFacts, now: datetime, *, late: bool = False, missed: int = 0) -> Document:
    """The daily summary of one home."""
    home, zone = facts.home, facts.home.zone
    name = clean(home.name)
    problems = concerns(facts, now)
    verdict = "all normal" if not problems else "needs attention: " + "; ".join(problems)
    title = f"{name}: {_capital(verdict)}"
    if late:
        title = "[late] " + title
    blocks: list[Block] = [para(bold(_capital(verdict) + "."))]
    seen_from = facts.seen_from
    period = f"From {dated(facts.start, zone)} to {dated(facts.end, zone)}."
    blocks.append(para(period))
    if late:
        blocks.append(
            para(
                f"This summary was due at {clock(facts.end, zone)} and comes late: hpoll was "
                "not running then."
            )
        )
    if missed:
        blocks.append(
            para(
                f"{plural(missed, 'earlier summary', 'earlier summaries')} could not be sent "
                "while hpoll was not running; this one covers the latest day."
            )
        )
    if seen_from is None:
        blocks.append(
            para(f"We have not heard from {name} yet, so there is nothing to tell about this time.")
        )
    else:
        if seen_from > facts.start:
            blocks.append(
                para(
                    f"We began watching {name} on {dated(seen_from, zone)}; this summary covers "
                    "only the time since then."
                )
            )
        unseen = facts.unseen()
        if unseen:
            blocks.append(
                para(
                    f"We could not see for {span(unseen)} of it (see below); that time is not "
                    "counted as quiet."
                )
            )
        blocks += [Heading("Movement"), *_movement(facts)]
    blocks.append(Heading("What happened"))
    happened: list[Line] = [
        _incident_line(a, home)
        for a in facts.incidents
        if a.kind not in ("bridge", "stale")  # the blind spells below say it, to the minute
    ]
    happened += [_blind_line(spell, facts) for spell in facts.blind_spells]
    if happened:
        blocks += entries(happened)
    else:
        blocks.append(para("No alarms, and we could see all the time."))
    blocks.append(Heading("Devices"))
    devices = [_device_line(d, (home, now)) for d in facts.batteries + facts.offline]
    blocks += entries(devices) or (para("All devices respond and no battery is low."),)
    blocks.append(Heading("Right now"))
    if facts.blind_now is not None:
        blocks.append(para(*cannot_see(home, facts.blind_now, now)))
    elif facts.last_report_at is not None:
        last = said_when(facts.last_report_at, zone, now)
        blocks.append(para(f"We can see: the last news from {name} came at {last}."))
    return Document(
        title,
        "normal" if not problems else "attention",
        tuple(blocks),
        _footer([home.name], zone.key),
    )


def _movement(facts: SummaryFacts) -> list[Block]:
    zone = facts.home.zone
    first, last = facts.first, facts.last
    if not facts.count or first is None or last is None:
        return [para("No movement was noticed in this time.")]
    where_first = f" {in_room(first.room)}" if first.room else ""
    where_last = f" {in_room(last.room)}" if last.room else ""
    lines: list[Line] = [
        (
            bold(plural(facts.count, "movement")),
            f": the first at {dated(first.at, zone)}{where_first}, "
            f"the last at {dated(last.at, zone)}{where_last}.",
        )
    ]
    busiest, busiest_count = max(facts.rooms.items(), key=lambda item: (item[1], item[0]))
    if len(facts.rooms) > 1:
        lines.append((f"Most movement {in_room(busiest)} ({busiest_count}).",))
    if facts.longest_quiet is not None:
        quiet_start, quiet_end = facts.longest_quiet
        lines.append(
            (
                f"Longest time without movement while we could see: {dated(quiet_start, zone)} "
                f"to {dated(quiet_end, zone)} ({span(quiet_end - quiet_start)}).",
            )
        )
    return list(entries(lines))


def digest(parts: list[Document]) -> Document:
    """Several homes' summaries in one message: the verdicts first, then each home."""
    parts = sorted(parts, key=lambda part: part.title)
    attention = [doc for doc in parts if doc.tone != "normal"]
    homes = plural(len(parts), "home")
    title = (
        f"{homes}: all normal"
        if not attention
        else f"{homes}: {len(attention)} need{'s' if len(attention) == 1 else ''} attention"
    )
    blocks: list[Block] = list(entries([(doc.title,) for doc in parts]))
    for doc in parts:
        blocks.append(Heading(doc.title))
        blocks += [block for block in doc.blocks if not isinstance(block, Heading)]
    return Document(
        title,
        "attention" if attention else "normal",
        tuple(blocks),
        "You receive this because you watch over these homes with hpoll.",
    )


def test_message(caregiver: str) -> Document:
    """``hpoll-relay notify-test``: proof that the channel works, in the channel's format."""
    return Document(
        "hpoll test",
        "normal",
        (
            para(f"Hello {clean(caregiver)}: hpoll can reach you here."),
            para("Summaries and alerts about the homes you watch will arrive like this one."),
        ),
    )
