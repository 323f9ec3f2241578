"""`python -m privacy.erase --loan ID`: erase one loan's personal data (privacy/erasure.py).

    python -m privacy.erase --loan L-1                       a closed loan past its legal retention
    python -m privacy.erase --loan L-1 --dry-run             what it would change, changing nothing
    python -m privacy.erase --loan L-1 --force-before-retention --reason "UK GDPR art. 17 request 2026-114"
    python -m privacy.erase --loan L-1 --force-open --force-before-retention --reason "..."

A borrower with several loans: one run per loan. The reason is recorded in the `erasures` table with the
operator (default: your OS user), the time and the counts; it must name the legal basis, not the borrower.
The database is DATABASE_URL, or else the embedded PostgreSQL of `make run` (in OVERDUE_STATE_DIR).
Exit codes: 0 erased (or already erased); 1 refused or database unreachable; 2 invalid input.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
from collections.abc import Sequence

from domain.config_file import ConfigError
from privacy.erasure import ErasureRefused, erase_loan, render_erasure, retention_years
from stack.settings import Settings
from starter.database import CommandFailed, command_database

EXIT_OK, EXIT_REFUSED, EXIT_INVALID = 0, 1, 2
RETENTION_OVER = "retention period over"
# A reason is the legal basis ("GDPR art. 17 request 2026-114"), never the borrower's own data.
_LOOKS_PERSONAL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+|\+?\d[\d ().-]{7,}\d")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m privacy.erase",
        description="Erase one loan's personal data from PostgreSQL and destroy its data key (Temporal "
        "histories become unreadable).",
    )
    parser.add_argument("--loan", required=True, metavar="ID", help="the loan id")
    parser.add_argument(
        "--reason",
        metavar="TEXT",
        help=f"the legal basis, recorded (required with a --force flag; default {RETENTION_OVER!r})",
    )
    parser.add_argument("--operator", metavar="NAME", help="who erases, recorded (default: your OS user)")
    parser.add_argument(
        "--force-before-retention",
        action="store_true",
        help="erase although the legal retention has not ended (a lawful request; needs --reason)",
    )
    parser.add_argument(
        "--force-open",
        action="store_true",
        help="erase although the loan is still in collection (needs --reason; says what it cannot erase)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
    args = parser.parse_args(argv)
    problems = _problems(args)
    if problems:
        parser.error("; ".join(problems))
    return args


def _problems(args: argparse.Namespace) -> list[str]:
    problems = []
    if not args.loan.strip() or len(args.loan) > 200:
        problems.append("--loan: must be a loan id (1 to 200 characters)")
    forced = args.force_before_retention or args.force_open
    if forced and not (args.reason or "").strip():
        problems.append("--reason: required with --force-before-retention or --force-open (the legal basis)")
    if args.reason is not None:
        if not args.reason.strip() or len(args.reason) > 500:
            problems.append("--reason: 1 to 500 characters")
        elif _LOOKS_PERSONAL.search(args.reason):
            problems.append(
                "--reason: looks like an e-mail address or a phone number; give the legal basis only"
            )
    if args.operator is not None and not 1 <= len(args.operator.strip()) <= 100:
        problems.append("--operator: 1 to 100 characters")
    return problems


async def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        years = retention_years(settings.contact_profiles_file)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    try:
        async with (
            command_database(settings, missing_schema="lacks the erasure tables") as pool,
            pool.acquire() as connection,
        ):
            report = await erase_loan(
                connection,
                args.loan,
                years=years,
                operator=(args.operator or getpass.getuser()).strip(),
                reason=(args.reason or RETENTION_OVER).strip(),
                force_before_retention=args.force_before_retention,
                force_open=args.force_open,
                apply=not args.dry_run,
            )
    except ErasureRefused as refused:
        print(f"refused: {refused}", file=sys.stderr)
        return EXIT_REFUSED
    except CommandFailed as error:
        print(str(error), file=sys.stderr)
        return error.code
    print(render_erasure(report))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return asyncio.run(run(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
