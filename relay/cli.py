"""``hpoll-relay``: run the relay and administer it.

Configuration comes from flags or the environment (HPOLL_RELAY_DB, HPOLL_RELAY_HOST,
HPOLL_RELAY_PORT, HPOLL_RELAY_ADMIN_TOKEN, HPOLL_RELAY_SECRET_KEY, HPOLL_RELAY_RETENTION_DAYS).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Sequence
import dataclasses
import functools
import os
from pathlib import Path
import re
import sys
from typing import Any, TextIO

from cryptography.fernet import Fernet

from . import __version__, logs
from .admin import ALERT_KINDS, Admin, AdminError, format_time
from .app import create_app
from .config import Settings
from .http.dashboard.accounts import AccountError, Accounts, invitation
from .http.serve import serve
from .messages import compose
from .notifications.send import deliver
from .schema import ReportError, decode_report
from .secretbox import (
    KEY_ENV,
    SecretBox,
    SecretBoxError,
    SecretKeyError,
    parse_keys,
    read_key_file,
    write_key_file,
)
from .storage.db import NotMigratedError, create_engine, require_current_schema, upgrade
from .storage.retention import prune

type Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]

#: C0 and C1 control characters, and the Unicode format characters that reorder or hide text
#: (bidi overrides, zero-width joiners): a home or device name must not drive the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), not obeyed."""
    return _CONTROL.sub(lambda match: ascii(match.group())[1:-1], text)


def _say(*parts: object, file: TextIO | None = None, flush: bool = False) -> None:
    print(*(printable(str(part)) for part in parts), file=file, flush=flush)


def _validate_report(args: argparse.Namespace) -> int:
    failures = 0
    for path in args.files:
        try:
            report = decode_report(Path(path).read_bytes())
        except OSError as err:
            _say(f"{path}: cannot read: {err.strerror}", file=sys.stderr)
        except ValueError as err:  # ReportError, and BodyError or bad UTF-8 (not JSON)
            kind = "invalid report" if isinstance(err, ReportError) else "not JSON"
            _say(f"{path}: {kind}: {err}", file=sys.stderr)
        else:
            _say(
                f"{path}: ok (home {report.home_id}, {len(report.devices)} devices, "
                f"{len(report.activity)} activity events)"
            )
            continue
        failures += 1
    return 1 if failures else 0


type AdminAction = Callable[[argparse.Namespace, Admin], Awaitable[int]]


def _admin_command(*, need_box: bool = False) -> Callable[[AdminAction], Command]:
    """A command run through Admin on a migrated database (``need_box``: with the secret key,
    for commands that write or read caregivers' URLs)."""

    def wrap(action: AdminAction) -> Command:
        @functools.wraps(action)
        async def command(args: argparse.Namespace, settings: Settings) -> int:
            engine = create_engine(settings.db_url)
            try:
                await require_current_schema(engine)
                box = settings.secret_box() if need_box else None
                return await action(args, Admin(engine, box))
            finally:
                await engine.dispose()

        return command

    return wrap


async def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings.db_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    _say("database is up to date")
    return 0


async def _db_prune(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings.db_url)
    try:
        await require_current_schema(engine)
        pruned = await prune(engine, settings.retention_days)
    finally:
        await engine.dispose()
    _say(
        f"removed {pruned.reports} reports and {pruned.messages} messages older than "
        f"{settings.retention_days} days"
    )
    return 0


@_admin_command()
async def _home_add(args: argparse.Namespace, admin: Admin) -> int:
    home = await admin.add_home(args.name, args.timezone)
    _say(f"home id: {home.id}")
    _say(f"token:   {home.token}")
    _say("The token is shown only now; enter it in the home's hpoll relay options.")
    return 0


@_admin_command()
async def _home_list(args: argparse.Namespace, admin: Admin) -> int:
    homes = await admin.list_homes()
    if not homes:
        _say("no homes yet: hpoll-relay home add NAME --timezone Area/City")
    for home in homes:
        state = {True: "bridge ok", False: "BRIDGE OFFLINE", None: "bridge ?"}[
            home.bridge_reachable
        ]
        _say(
            f"{home.id}  {home.name:30s} {home.timezone:20s} "
            f"last report {format_time(home.last_report_at)}  {state}"
        )
    return 0


@_admin_command()
async def _home_rotate(args: argparse.Namespace, admin: Admin) -> int:
    home = await admin.rotate_token(args.home)
    _say(f"home id: {home.id}")
    _say(f"token:   {home.token}")
    _say("Every earlier token of this home is revoked.")
    return 0


@_admin_command()
async def _home_revoke(args: argparse.Namespace, admin: Admin) -> int:
    _say(f"revoked every token of {await admin.revoke_tokens(args.home)}")
    return 0


@_admin_command()
async def _home_remove(args: argparse.Namespace, admin: Admin) -> int:
    if not args.yes:
        _say("this deletes the home and all its data; repeat with --yes", file=sys.stderr)
        return 2
    _say(f"removed {await admin.remove_home(args.home)}")
    return 0


@_admin_command(need_box=True)
async def _caregiver_add(args: argparse.Namespace, admin: Admin) -> int:
    caregiver_id = await admin.add_caregiver(args.name, args.apprise)
    _say(f"caregiver {caregiver_id} added (URL stored encrypted)")
    return 0


def _base_url(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


@_admin_command(need_box=True)
async def _caregiver_invite(args: argparse.Namespace, admin: Admin) -> int:
    accounts = Accounts(admin.engine)
    caregiver_id = await accounts.caregiver_id(args.name)
    # Read the channel before a link exists: a key that does not fit makes no link at all.
    _, url = await admin.caregiver_url(str(caregiver_id))
    token, expires = await accounts.create_link(caregiver_id)
    link = f"{_base_url(Settings.from_env())}/signin/{token}"
    until = f"{expires:%H:%M} UTC"
    if args.print:
        _say(link)
        _say(f"(works once, until {until}; hand it to {args.name} yourself)", file=sys.stderr)
        return 0
    result = await deliver(url, invitation(link, expires))
    _say(
        (f"sent to {args.name} (valid until {until}): " if result.ok else "FAILED: ")
        + result.detail
    )
    return 0 if result.ok else 1


@_admin_command()
async def _caregiver_role(args: argparse.Namespace, admin: Admin) -> int:
    accounts = Accounts(admin.engine)
    await accounts.set_role(await accounts.caregiver_id(args.name), args.role)
    sees = "every home" if args.role == "operator" else "the homes they are subscribed to"
    _say(f"{args.name} is now {args.role} (sees {sees})")
    return 0


@_admin_command()
async def _caregiver_list(args: argparse.Namespace, admin: Admin) -> int:
    for caregiver in await admin.list_caregivers():
        health = (
            f"FAILING since {format_time(caregiver.failing_since)}"
            if caregiver.failing_since
            else "ok"
        )
        role = " (operator)" if caregiver.role == "operator" else ""
        _say(f"{caregiver.id:4d}  {caregiver.name:30s} {health}{role}")
    return 0


@_admin_command()
async def _subscribe(args: argparse.Namespace, admin: Admin) -> int:
    kinds = [k.strip() for k in args.alerts.split(",") if k.strip()]
    subscription = await admin.subscribe(
        args.home, args.caregiver, args.summary_at, kinds, args.escalation
    )
    _say(
        f"subscribed (home {subscription.home_id}, summary at "
        f"{subscription.summary_at or 'never'} home time, alerts: {', '.join(kinds) or 'none'})"
    )
    return 0


@_admin_command(need_box=True)
async def _notify_test(args: argparse.Namespace, admin: Admin) -> int:
    caregiver, url = await admin.caregiver_url(args.caregiver)
    result = await deliver(url, compose.test_message(caregiver.name))
    _say(("sent: " if result.ok else "FAILED: ") + result.detail)
    return 0 if result.ok else 1


def _hours(value: str) -> tuple[str, str]:
    start, dash, end = value.partition("-")
    if not dash:
        raise AdminError(f"'{value}' is not a span of hours (HH:MM-HH:MM)")
    return start.strip(), end.strip()


@_admin_command()
async def _home_set(args: argparse.Namespace, admin: Admin) -> int:
    changes: dict[str, object] = {
        key: getattr(args, key)
        for key in ("inactivity_minutes", "offline_minutes", "stale_minutes", "bridge_minutes")
        if getattr(args, key) is not None
    }
    if args.active:
        changes["active_start"], changes["active_end"] = _hours(args.active)
    if not changes:
        raise AdminError("nothing to set; see hpoll-relay home set --help")
    stored = await admin.set_home_rules(args.home, changes)
    _say("alerting settings: " + ", ".join(f"{k}={v}" for k, v in sorted(stored.items())))
    return 0


@_admin_command()
async def _caregiver_quiet(args: argparse.Namespace, admin: Admin) -> int:
    start, end = (None, None) if args.hours == "off" else _hours(args.hours)
    await admin.set_quiet_hours(args.caregiver, start, end)
    _say(f"quiet hours: {f'{start}-{end} (home time)' if start else 'none'}")
    return 0


@_admin_command()
async def _caregiver_digest(args: argparse.Namespace, admin: Admin) -> int:
    await admin.set_digest(args.caregiver, args.state == "on")
    _say(f"digest {args.state}")
    return 0


@_admin_command()
async def _notifications(args: argparse.Namespace, admin: Admin) -> int:
    rows = await admin.list_notifications(args.limit)
    if not rows:
        _say("no messages yet")
    for note, caregiver in rows:
        error = f"  last error: {note.last_error}" if note.last_error else ""
        _say(
            f"{note.id:5d}  {format_time(note.created_at)}  {caregiver:20s} {note.status:8s} "
            f"attempts {note.attempts}  {note.title}{error}"
        )
    return 0


@_admin_command()
async def _ack(args: argparse.Namespace, admin: Admin) -> int:
    alert = await admin.acknowledge(args.alert, by=args.by)
    _say(f"alert {alert.id} ({alert.kind}, home {alert.home_id}): {alert.state}")
    return 0


@_admin_command()
async def _alerts(args: argparse.Namespace, admin: Admin) -> int:
    alerts = await admin.list_alerts(args.home, args.limit)
    if not alerts:
        _say("no alerts")
    for alert in alerts:
        text = (alert.details or {}).get("text", "")
        acked = f" by {alert.acked_by}" if alert.acked_by else ""
        _say(
            f"{alert.id:5d}  {format_time(alert.opened_at)}  {alert.home_id}  "
            f"{alert.kind:10s} {alert.state}{acked}  {text}"
        )
    return 0


def _key_generate(args: argparse.Namespace, settings: Settings) -> int:
    key = Fernet.generate_key()
    if args.file is None:
        _say(key.decode())
        return 0
    path = Path(args.file)
    if not path.is_absolute():
        raise SecretKeyError("give the key file as an absolute path")
    if path.exists():
        raise SecretKeyError(f"{path} exists already; 'hpoll-relay key rotate' replaces a key")
    write_key_file(path, [key])
    _say(f"new key written to {path} (mode 0600); set HPOLL_RELAY_KEY_FILE={path}")
    return 0


async def _key_rotate(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings.db_url)
    try:
        await require_current_schema(engine)
        if env_keys := os.environ.get(KEY_ENV):
            keys = parse_keys(env_keys, KEY_ENV)
            if len(keys) < 2:
                raise SecretKeyError(
                    f"with {KEY_ENV}, rotate in three steps: set it to NEW,OLD on every "
                    "replica ('hpoll-relay key generate' makes NEW), run 'key rotate', then set "
                    "it to NEW alone"
                )
            count = await Admin(engine).reencrypt(SecretBox(*keys))
            _say(f"re-encrypted {count} caregiver URLs with the first key of {KEY_ENV}")
            _say(f"now set {KEY_ENV} to that key alone on every replica, and restart them")
            return 0
        path = settings.key_file
        if path is None:
            settings.secret_box()  # raises, saying what to set
            return 2
        old = read_key_file(path)
        new = Fernet.generate_key()
        # Both keys on disk first: whatever happens next, every URL stays readable.
        write_key_file(path, [new, *old])
        count = await Admin(engine).reencrypt(SecretBox(new, *old))
        write_key_file(path, [new])
    finally:
        await engine.dispose()
    _say(f"re-encrypted {count} caregiver URLs with a new key in {path}; the old key is gone")
    _say("restart the relay so that it reads the new key")
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    async def check() -> None:
        engine = create_engine(settings.db_url)
        try:
            await require_current_schema(engine)
        finally:
            await engine.dispose()

    asyncio.run(check())
    if settings.notify_seconds > 0:
        settings.secret_box()  # no notifier without a key of its own: refuse now, and say why
    logs.configure()
    # The database drivers answer from their own threads; with Python's default 5 ms switch
    # interval each answer can wait that long for the busy event loop to let go of the GIL.
    sys.setswitchinterval(0.0005)
    asyncio.run(
        serve(
            create_app(settings),
            settings,
            f"hpoll relay listening on http://{settings.host}:{settings.port}",
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="hpoll-relay", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--db", help="database URL (default: $HPOLL_RELAY_DB or ./hpoll-relay.db)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the relay")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(sync_handler=_serve)

    db = commands.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="create or migrate the schema").set_defaults(handler=_db_upgrade)
    db.add_parser(
        "prune", help="delete raw reports and finished messages past the retention"
    ).set_defaults(handler=_db_prune)

    _add_home_commands(commands)
    _add_caregiver_commands(commands)

    key = commands.add_parser("key", help="the secret key of caregivers' URLs").add_subparsers(
        dest="key_command", required=True
    )
    generate = key.add_parser("generate", help="print a new key, or write it to a new file")
    generate.add_argument("--file", metavar="ABSOLUTE_PATH", help="write it here (mode 0600)")
    generate.set_defaults(sync_handler=_key_generate)
    key.add_parser(
        "rotate", help="encrypt every stored URL with a new key, in one transaction"
    ).set_defaults(handler=_key_rotate)

    subscribe = commands.add_parser("subscribe", help="a caregiver watches a home")
    subscribe.add_argument("home")
    subscribe.add_argument("caregiver")
    subscribe.add_argument("--summary-at", metavar="HH:MM", help="daily summary, home's time")
    subscribe.add_argument(
        "--alerts", default=",".join(ALERT_KINDS), help=f"comma-separated: {','.join(ALERT_KINDS)}"
    )
    subscribe.add_argument("--escalation", type=int, default=0, help="order in the chain")
    subscribe.set_defaults(handler=_subscribe)

    test = commands.add_parser("notify-test", help="send a test message to a caregiver")
    test.add_argument("caregiver")
    test.set_defaults(handler=_notify_test)

    check = commands.add_parser("validate-report", help="check report JSON files")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(plain_handler=_validate_report)
    return parser


type Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def _add_home_commands(commands: Commands) -> None:
    home = commands.add_parser("home", help="manage homes").add_subparsers(
        dest="home_command", required=True
    )
    add = home.add_parser("add", help="add a home and print its token")
    add.add_argument("name")
    add.add_argument("--timezone", required=True, help="IANA name, e.g. Europe/Berlin")
    add.set_defaults(handler=_home_add)
    home.add_parser("list", help="list homes").set_defaults(handler=_home_list)
    rotate = home.add_parser("rotate-token", help="revoke the tokens, print a new one")
    rotate.add_argument("home")
    rotate.set_defaults(handler=_home_rotate)
    revoke = home.add_parser("revoke-token", help="revoke every token of a home")
    revoke.add_argument("home")
    revoke.set_defaults(handler=_home_revoke)
    remove = home.add_parser("remove", help="delete a home and its data")
    remove.add_argument("home")
    remove.add_argument("--yes", action="store_true")
    remove.set_defaults(handler=_home_remove)
    rules = home.add_parser("set", help="per-home alerting settings")
    rules.add_argument("home")
    rules.add_argument("--inactivity-minutes", type=int, help="no activity this long (180)")
    rules.add_argument(
        "--active", metavar="HH:MM-HH:MM", help="when inactivity counts (07:00-22:00)"
    )
    rules.add_argument("--offline-minutes", type=int, help="a device offline this long (60)")
    rules.add_argument("--stale-minutes", type=int, help="no reports this long (30)")
    rules.add_argument("--bridge-minutes", type=int, help="bridge unreachable this long (15)")
    rules.set_defaults(handler=_home_set)


def _add_caregiver_commands(commands: Commands) -> None:
    caregiver = commands.add_parser("caregiver", help="manage caregivers").add_subparsers(
        dest="caregiver_command", required=True
    )
    cg_add = caregiver.add_parser("add", help="add a caregiver with an Apprise URL")
    cg_add.add_argument("name")
    cg_add.add_argument("--apprise", required=True, metavar="URL")
    cg_add.set_defaults(handler=_caregiver_add)
    caregiver.add_parser("list", help="list caregivers").set_defaults(handler=_caregiver_list)
    invite = caregiver.add_parser(
        "invite", help="send a one-time dashboard sign-in link through their channel"
    )
    invite.add_argument("name")
    invite.add_argument("--print", action="store_true", help="print the link instead of sending it")
    invite.set_defaults(handler=_caregiver_invite)
    role = caregiver.add_parser("role", help="operator (sees every home) or caregiver")
    role.add_argument("name")
    role.add_argument("role", choices=("caregiver", "operator"))
    role.set_defaults(handler=_caregiver_role)
    quiet = caregiver.add_parser("quiet", help="hours when non-urgent alerts wait")
    quiet.add_argument("caregiver")
    quiet.add_argument("hours", metavar="HH:MM-HH:MM|off", help="in the home's time")
    quiet.set_defaults(handler=_caregiver_quiet)
    digest = caregiver.add_parser("digest", help="several homes' summaries in one message")
    digest.add_argument("caregiver")
    digest.add_argument("state", choices=("on", "off"))
    digest.set_defaults(handler=_caregiver_digest)

    ack = commands.add_parser("ack", help="acknowledge an urgent alert (stops its escalation)")
    ack.add_argument("alert", type=int)
    ack.add_argument("--by", default="cli", help="who is looking into it")
    ack.set_defaults(handler=_ack)
    alerts = commands.add_parser("alerts", help="alert history, newest first")
    alerts.add_argument("--home")
    alerts.add_argument("--limit", type=int, default=50)
    alerts.set_defaults(handler=_alerts)
    sent = commands.add_parser("notifications", help="messages sent or waiting, newest first")
    sent.add_argument("--limit", type=int, default=50)
    sent.set_defaults(handler=_notifications)


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    overrides: dict[str, Any] = {}
    if args.db:
        overrides["db_url"] = args.db
    for name in ("host", "port"):
        if getattr(args, name, None):
            overrides[name] = getattr(args, name)
    return dataclasses.replace(settings, **overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if plain := getattr(args, "plain_handler", None):
        status: int = plain(args)
        return status
    settings = _settings(args)
    try:
        if sync := getattr(args, "sync_handler", None):
            status = sync(args, settings)
            return status
        handler: Command = args.handler
        return asyncio.run(handler(args, settings))
    except (AccountError, AdminError, NotMigratedError, SecretBoxError, SecretKeyError) as err:
        _say(f"hpoll-relay: {err}", file=sys.stderr)
        return 2


def run() -> None:
    """Console-script wrapper: exit with main()'s status."""
    sys.exit(main())
