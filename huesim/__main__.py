"""Run the Hue cloud simulator on a port: ``python -m huesim --port 8765``.

Prints the base URL, an OAuth client id/secret and a ready application key, then serves until
interrupted. With ``--lively``, someone walks past a random motion sensor every few minutes, so a
poller sees the activity change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import timedelta
import logging
from pathlib import Path
import random
import secrets

from aiohttp import web

from .control import add_control_routes
from .home import walk_about
from .server import DEFAULT_FIXTURE, HueCloudSimulator, create_app


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hpoll-huesim", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE)
    parser.add_argument("--client-id", default="hpoll-demo")
    parser.add_argument("--client-secret", default=None, help="default: random, printed at start")
    parser.add_argument("--lively", action="store_true", help="simulate someone moving about")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--raw", action="store_true", help="the capture's anonymised names, not the demo home's"
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    secret = args.client_secret or secrets.token_urlsafe(12)
    app_key = secrets.token_hex(20)
    sim = HueCloudSimulator.from_fixture(
        fixture=args.fixture,
        clients={args.client_id: secret},
        app_keys={app_key},
        furnished=not args.raw,
    )
    app = create_app(sim)
    add_control_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    tokens = sim.oauth.issue_for_tests(args.client_id)
    print(f"Hue cloud simulator on http://{args.host}:{args.port}", flush=True)
    print(f"  bridge id        {sim.bridge_id}")
    print(f"  OAuth client     {args.client_id} / {secret}")
    print(
        f"  access token     {tokens['access_token']}  (valid "
        f"{timedelta(seconds=sim.oauth.access_token_seconds)})"
    )
    print(f"  application key  {app_key}")
    print(f"  control          curl http://{args.host}:{args.port}/sim", flush=True)
    walker = (
        asyncio.create_task(walk_about(sim.world, random.Random(args.seed)))
        if args.lively
        else None
    )
    try:
        await asyncio.Event().wait()
    finally:
        if walker is not None:
            walker.cancel()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
