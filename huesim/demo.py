"""The demo home: a simulated Hue bridge whose monitor reports to a running relay.

Someone walks about a simulated home; every ``--interval`` seconds the demo polls the bridge
through the Hue Remote API client (exactly as the integration does), turns what changed into a
report, and pushes it to the relay, printing what the relay now knows. Run by ``scripts/run``.

The demo also plays the caregiver: on first run it adds "Demo carer" to the relay, subscribed to
every alert and to a daily summary two minutes later, with an Apprise ``json://`` URL pointing at
a small inbox served here (``--inbox-port``), which prints every message the relay sends.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
import random
from zoneinfo import ZoneInfo

from aiohttp import ClientSession, web

from custom_components.hpoll.activity.report import build_report
from custom_components.hpoll.activity.tracker import ActivityTracker
from custom_components.hpoll.hue import HueError, HueRemoteClient
from relay.admin import ALERT_KINDS, Admin
from relay.config import Settings
from relay.storage.db import create_engine, require_current_schema

from .clock import SystemClock
from .server import HueCloudSimulator, create_app

DEMO_CLIENT = ("hpoll-demo", "demo-secret")
DEMO_APP_KEY = "demo-app-key"


DEMO_ZONE = "Europe/Amsterdam"


async def create_demo_home(db_url: str, inbox_port: int) -> str:
    """Add the demo home and its caregiver to the relay's database; return the home's token."""
    engine = create_engine(db_url)
    try:
        await require_current_schema(engine)
        # The relay's own key (it must read the caregiver's URL back to send).
        admin = Admin(engine, Settings(db_url=db_url).secret_box())
        home = await admin.add_home("Demo home", DEMO_ZONE)
        await admin.add_caregiver("Demo carer", f"json://127.0.0.1:{inbox_port}/")
        soon = datetime.now(ZoneInfo(DEMO_ZONE)) + timedelta(minutes=2)
        await admin.subscribe(home.id, "Demo carer", f"{soon:%H:%M}", list(ALERT_KINDS))
    finally:
        await engine.dispose()
    return home.token


def demo_home_token(db_url: str, token_file: Path, inbox_port: int) -> str:
    """The demo home's relay token: kept in a file, created in the relay's database once."""
    if token_file.exists():
        return token_file.read_text().strip()
    token = asyncio.run(create_demo_home(db_url, inbox_port))
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token)
    token_file.chmod(0o600)
    return token


@dataclass
class DemoHome:
    """Polls the simulated bridge and reports to the relay."""

    client: HueRemoteClient
    session: ClientSession
    relay_url: str
    token: str
    say: Callable[[str], None] = print
    tracker: ActivityTracker | None = None
    polls: int = 0

    async def home_id(self) -> str:
        """Ask the relay which home the token belongs to."""
        async with self.session.get(
            f"{self.relay_url}/api/v1/home", headers={"Authorization": f"Bearer {self.token}"}
        ) as reply:
            reply.raise_for_status()
            return str((await reply.json())["id"])

    async def cycle(self, home_id: str) -> int:
        """One poll and one report; returns the relay's HTTP status."""
        now = datetime.now(UTC)
        try:
            snapshot = await self.client.get_resources()
        except HueError as err:
            self.say(f"{now:%H:%M:%S} bridge poll failed: {err}")
            return 0
        self.polls += 1
        if self.tracker is None:
            self.tracker = ActivityTracker(started_at=now)
        activity = [event for event in self.tracker.update(snapshot, now) if event.primary]
        report = build_report(
            snapshot,
            home_id=home_id,
            bridge_name="Demo bridge",
            now=now,
            activity=activity,
            counters={"polls": self.polls},
        )
        async with self.session.post(
            f"{self.relay_url}/api/v1/reports",
            json=report,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as reply:
            status = reply.status
        rooms = sorted({event.room or "(no room)" for event in activity})
        self.say(
            f"{now:%H:%M:%S} report {status}: {len(report['devices'])} devices, "
            f"{len(activity)} activity events{' in ' + ', '.join(rooms) if rooms else ''}"
        )
        return status


def inbox_app(say: Callable[[str], None] = print) -> web.Application:
    """What Apprise's json:// delivers to: each message printed, as the caregiver would see it."""

    async def receive(request: web.Request) -> web.Response:
        message = await request.json()
        say(f"  >> to Demo carer: {message.get('title', '')}")
        for line in str(message.get("message", "")).splitlines():
            say(f"     {line}")
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    return app


async def run(args: argparse.Namespace, relay_token: str) -> None:
    """Simulator + caregiver inbox + demo home until interrupted (or for ``--cycles``)."""
    sim = HueCloudSimulator.from_fixture(
        SystemClock(), clients=dict([DEMO_CLIENT]), app_keys={DEMO_APP_KEY}
    )
    runner = web.AppRunner(create_app(sim), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    inbox = web.AppRunner(inbox_app(lambda line: print(line, flush=True)), access_log=None)
    await inbox.setup()
    await web.TCPSite(inbox, "127.0.0.1", args.inbox_port).start()
    hue_token = str(sim.oauth.issue_for_tests(DEMO_CLIENT[0])["access_token"])
    rng = random.Random(args.seed)
    sensors = [m["id"] for m in sim.world.of_type("motion")]

    async def access_token() -> str:
        return hue_token

    print(
        f"Hue cloud simulator on http://127.0.0.1:{args.port}; reporting to {args.relay}",
        flush=True,
    )
    try:
        async with ClientSession() as session:
            client = HueRemoteClient(
                session, access_token, DEMO_APP_KEY, base_url=f"http://127.0.0.1:{args.port}"
            )
            home = DemoHome(client, session, args.relay, relay_token)
            home_id = await home.home_id()
            cycle = 0
            while args.cycles == 0 or cycle < args.cycles:
                for _ in range(rng.randint(0, 2)):
                    sim.world.move(rng.choice(sensors), seconds=rng.uniform(1, 20))
                await asyncio.sleep(args.interval)
                await home.cycle(home_id)
                cycle += 1
    finally:
        await runner.cleanup()
        await inbox.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    parser = argparse.ArgumentParser(prog="python -m huesim.demo", description=__doc__)
    parser.add_argument("--relay", default="http://127.0.0.1:8088")
    parser.add_argument("--db", required=True, help="the relay's database URL")
    parser.add_argument("--token-file", default="demo-data/demo-home.token")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--inbox-port", type=int, default=8766, help="the caregiver's inbox")
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--cycles", type=int, default=0, help="0: run until interrupted")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        token = demo_home_token(args.db, Path(args.token_file), args.inbox_port)
        asyncio.run(run(args, token))


if __name__ == "__main__":
    main()
