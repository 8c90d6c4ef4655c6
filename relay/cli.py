"""``hpoll-relay``: the relay's command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
from pathlib import Path
import sys

from . import __version__
from .schema import ReportError, validate_report


def _validate_report(args: argparse.Namespace) -> int:
    failures = 0
    for path in args.files:
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
            report = validate_report(payload)
        except OSError as err:
            print(f"{path}: cannot read: {err.strerror}", file=sys.stderr)
        except ValueError as err:  # JSON syntax errors and ReportError alike
            kind = "invalid report" if isinstance(err, ReportError) else "not JSON"
            print(f"{path}: {kind}: {err}", file=sys.stderr)
        else:
            print(
                f"{path}: ok (home {report['home_id']}, {len(report['devices'])} devices, "
                f"{len(report['activity'])} activity events)"
            )
            continue
        failures += 1
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="hpoll-relay", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "validate-report", help="check report JSON files against the report schema"
    )
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(handler=_validate_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


def run() -> None:
    """Console-script wrapper: exit with main()'s status."""
    sys.exit(main())
