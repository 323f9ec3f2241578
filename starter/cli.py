"""`python -m starter`: start loans from a file, report payments, record promises, close, inspect.

    python -m starter start --file loans.csv [--strategy FILE] [--concurrency 20] [--demo-day-seconds 10]
    python -m starter pay L-1 --amount 50000 --payment-id P-881 [--currency CNY] [--source servicing]
    python -m starter promise L-1 --amount 50000 --date 2026-12-01 [--note "payday"]
    python -m starter close L-1 --reason restructured [--note "new plan signed"]
    python -m starter status L-1 [--json]
    python -m starter agencies list | export --agency ID --out placements.csv | check
    python -m starter preview --template reminder_polite [--channel sms] [--locale zh-CN] [--demo DEMO-0001]

Every update and signal is signed with this CLI's operator key (OVERDUE_SIGNING_KEY_FILES; under `make run`
the dev key in .state/authority/operator.key): the collector or approver of a request is the operator the key
names, never free text. Every input is validated before connecting to Temporal, so a bad amount, date or file
row starts or signals nothing. Exit codes: 0 done; 1 Temporal unreachable, unknown loan or server error;
2 invalid input (one line per bad field on stderr, a missing signing key too); 3 refused by the workflow (its
reason on stderr, e.g. "assertion: expired").
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from authority import Actor, CannotAct, KeyFileError, Signer
from domain.case import CloseReason
from domain.loan import Loan, format_money
from domain.strategy import Strategy, StrategyError, load_strategy
from stack.settings import Settings
from starter import agencies_cli, collector_cli, documents_cli, preview
from starter.api import (
    CollectionClosed,
    CollectionsStarter,
    InvalidRequest,
    NotALoan,
    PromiseRejected,
    RequestRefused,
    StartFailed,
    StartResult,
    UnknownLoan,
    WorkflowIdTaken,
    build_close,
    build_promise,
    check_demo_day_seconds,
    check_payment,
    summarize,
)
from starter.cli_input import _Invalid, _lines, _loan_id, _minor_units, _Problems
from starter.connect import TemporalUnreachable, connect
from starter.loaders import LoanFileError, OverdueRange, load_loans
from starter.problems import field_problems
from starter.status_table import format_status, when

R = TypeVar("R")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_REJECTED = 3


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise _Invalid(
            [f"environment: {field}: {message}" for field, message in field_problems(error)]
        ) from None


def _signer() -> Signer:
    """The operator's key (and servicing's, if this machine holds it); exit 2 when none can be read."""
    try:
        return Signer.from_settings(dev_fallback=("operator",))
    except KeyFileError as error:
        raise _Invalid([f"signing key: {error}"]) from None


def _operator(signer: Signer) -> Actor:
    """Who this CLI acts as: the operator identity its key is bound to."""
    try:
        return signer.default_actor(("operator",))
    except CannotAct as error:
        raise _Invalid([f"actor: {error}"]) from None


def _starter(client: Any, settings: Settings, signer: Signer) -> CollectionsStarter:
    return CollectionsStarter(client, task_queue=settings.task_queue, settings=settings, signer=signer)


def _prepare_start(
    args: argparse.Namespace, settings: Settings
) -> tuple[Strategy, list[Loan], int, float | None]:
    """Options, strategy and every loan of the file, all checked; every problem reported in one go."""
    problems = _Problems()
    concurrency = args.concurrency
    if concurrency < 1:
        problems.add("concurrency", f"must be at least 1 (got {concurrency})")
    demo_day_seconds = (
        args.demo_day_seconds if args.demo_day_seconds is not None else settings.demo_day_seconds
    )
    problems.check(lambda: check_demo_day_seconds(demo_day_seconds))
    lines = _lines(problems.items)
    strategy: Strategy | None = None
    try:
        strategy = load_strategy(args.strategy or settings.strategy_file)
    except StrategyError as error:
        lines += str(error).splitlines()
    segments = None if strategy is None else {segment.name for segment in strategy.segments} | {"standard"}
    loans: list[Loan] = []
    overdue_range = OverdueRange(datetime.now(UTC), settings.max_overdue_years)
    try:
        loans = load_loans(args.file, segments=segments, overdue_range=overdue_range)
    except LoanFileError as error:
        lines += error.problems
    if lines or strategy is None:
        raise _Invalid(lines)
    return strategy, loans, concurrency, demo_day_seconds


async def _start(args: argparse.Namespace, settings: Settings) -> int:
    strategy, loans, concurrency, demo_day_seconds = _prepare_start(args, settings)
    client = await connect(settings)
    starter = CollectionsStarter(
        client,
        task_queue=settings.task_queue,
        strategy=strategy,
        demo_day_seconds=demo_day_seconds,
        settings=settings,
    )
    try:
        results = await starter.start_many(loans, concurrency=concurrency, progress=not args.no_progress)
    except StartFailed as error:
        _print_summary(len(loans), error.results)
        for loan_id, failure in list(error.failures.items())[:20]:
            print(f"{loan_id}: not started: {failure}", file=sys.stderr)
        if len(error.failures) > 20:
            print(
                f"... and {len(error.failures) - 20} more; running the same file again is safe",
                file=sys.stderr,
            )
        return EXIT_FAILED
    _print_summary(len(loans), results)
    return EXIT_OK


def _print_summary(total: int, results: Mapping[str, StartResult]) -> None:
    counts = summarize(results)
    failed = total - len(results)
    line = f"{total} loan{'s' if total != 1 else ''}: {counts['started']} started, "
    if counts["new_cycle"]:  # cured loans overdue again: a new collection cycle each
        line += f"{counts['new_cycle']} new cycle{'s' if counts['new_cycle'] != 1 else ''}, "
    line += f"{counts['already_running']} already running, {counts['already_closed']} already closed"
    print(line + (f", {failed} failed" if failed else ""))


async def _pay(args: argparse.Namespace, settings: Settings) -> int:
    problems = _Problems()
    loan_id = _loan_id(problems, args.loan_id)
    amount = _minor_units(problems, args.amount)
    received_at: datetime | None = None
    if args.received_at is not None:
        try:
            received_at = datetime.fromisoformat(args.received_at)
        except ValueError:
            problems.add(
                "received_at",
                f"use ISO 8601 with an offset, e.g. 2026-11-25T10:00:00+08:00 (got {args.received_at!r})",
            )
    problems.check(lambda: check_payment(amount, args.payment_id, args.currency, received_at, args.source))
    problems.raise_if_any()
    signer = _signer()
    starter = _starter(await connect(settings), settings, signer)
    payment = await starter.pay(loan_id, amount, args.payment_id, args.currency, received_at, args.source)
    amount_text = format_money(payment.amount_minor, payment.currency)
    print(
        f"payment {payment.payment_id} of {amount_text} sent to loan {loan_id} (applied once per payment id)"
    )
    return EXIT_OK


async def _promise(args: argparse.Namespace, settings: Settings) -> int:
    problems = _Problems()
    loan_id = _loan_id(problems, args.loan_id)
    amount = _minor_units(problems, args.amount)
    due_date = date.today()
    try:
        due_date = date.fromisoformat(args.date)
    except ValueError:
        problems.add("due_date", f"not a date; use YYYY-MM-DD (got {args.date!r})")
    signer = _signer()
    operator = _operator(signer)
    problems.check(lambda: build_promise(amount, due_date, operator.name, args.note))
    problems.raise_if_any()
    starter = _starter(await connect(settings), settings, signer)
    accepted = await starter.promise(loan_id, amount, due_date, operator.name, args.note, actor=operator)
    deadline = when(accepted.deadline)
    print(f"promise {accepted.promise_id} accepted for loan {loan_id}: kept if paid before {deadline}")
    return EXIT_OK


async def _close(args: argparse.Namespace, settings: Settings) -> int:
    problems = _Problems()
    loan_id = _loan_id(problems, args.loan_id)
    problems.check(lambda: build_close(args.reason, args.note))
    problems.raise_if_any()
    starter = _starter(await connect(settings), settings, _signer())
    await starter.close(loan_id, args.reason, args.note)
    print(f"close ({args.reason}) sent to loan {loan_id}")
    return EXIT_OK


async def _collector_action(args: argparse.Namespace, settings: Settings) -> int:
    return await _update_command(
        args,
        settings,
        collector_cli.build_request,
        CollectionsStarter.collector_action,
        collector_cli.describe,
    )


async def _arrangement(args: argparse.Namespace, settings: Settings) -> int:
    return await _update_command(
        args,
        settings,
        collector_cli.build_arrangement,
        CollectionsStarter.arrangement,
        collector_cli.describe_arrangements,
    )


async def _update_command(
    args: argparse.Namespace,
    settings: Settings,
    build: Callable[[argparse.Namespace], tuple[str, BaseModel] | list[str]],
    send: Callable[..., Awaitable[R]],
    describe: Callable[[R], str],
) -> int:
    """A collector's or supervisor's update: bad fields exit 2 before anything is sent."""
    problems = _Problems()
    loan_id = _loan_id(problems, args.loan_id)
    signer = _signer()
    operator = _operator(signer)
    args.collector = args.approver = operator.name  # the operator acts, under the key's identity
    built = build(args)
    if isinstance(built, list):
        raise _Invalid([*_lines(problems.items), *built])
    problems.raise_if_any()
    update, request = built
    starter = _starter(await connect(settings), settings, signer)
    result = await send(starter, loan_id, update, request, actor=operator)
    print(f"{args.command} recorded on loan {loan_id} by {operator.name}: {describe(result)}")
    return EXIT_OK


async def _status(args: argparse.Namespace, settings: Settings) -> int:
    problems = _Problems()
    loan_id = _loan_id(problems, args.loan_id)
    problems.raise_if_any()
    starter = _starter(await connect(settings), settings, Signer([]))  # a query acts for nobody
    status = await starter.status(loan_id)
    print(status.model_dump_json(indent=2) if args.json else format_status(status))
    return EXIT_OK


# -- entry point ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m starter",
        description="Start loans into collections and report payments, promises and closures. "
        "Temporal is reached at TEMPORAL_ADDRESS (default localhost:7233).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    start = commands.add_parser("start", help="start collections for every loan of a file (idempotent)")
    start.add_argument("--file", required=True, type=Path, help="loans as .json, .jsonl or .csv")
    start.add_argument(
        "--strategy", type=Path, help="strategy TOML (default: OVERDUE_STRATEGY_FILE or default)"
    )
    start.add_argument("--concurrency", type=int, default=20, help="start calls in flight (default 20)")
    start.add_argument(
        "--demo-day-seconds",
        type=float,
        help="DEMO ONLY: one collections day lasts this many seconds (default OVERDUE_DEMO_DAY_SECONDS)",
    )
    start.add_argument("--no-progress", action="store_true", help="no progress bar")

    pay = commands.add_parser("pay", help="report a payment (applied at most once per payment id)")
    pay.add_argument("loan_id", metavar="LOAN_ID")
    pay.add_argument("--amount", required=True, metavar="MINOR", help="minor units, e.g. 123450 for 1,234.50")
    pay.add_argument("--payment-id", required=True, metavar="ID", help="servicing's unique payment id")
    pay.add_argument("--currency", help="ISO 4217 code (default: the loan's currency)")
    pay.add_argument("--source", default="servicing", help="servicing, agency, borrower or collector")
    pay.add_argument("--received-at", metavar="ISO", help="when it was received, with offset (default now)")

    promise = commands.add_parser("promise", help="record a promise to pay (accepted or rejected at once)")
    promise.add_argument("loan_id", metavar="LOAN_ID")
    promise.add_argument(
        "--amount", required=True, metavar="MINOR", help="minor units, e.g. 50000 for 500.00"
    )
    promise.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="promised date, borrower-local")
    promise.add_argument("--note")

    close = commands.add_parser("close", help="end the collection for a reason outside collections")
    close.add_argument("loan_id", metavar="LOAN_ID")
    close.add_argument("--reason", required=True, metavar="{" + ",".join(get_args(CloseReason)) + "}")
    close.add_argument("--note")

    status = commands.add_parser("status", help="where a loan stands")
    status.add_argument("loan_id", metavar="LOAN_ID")
    status.add_argument("--json", action="store_true", help="the full status as JSON")
    collector_cli.add_parsers(commands)
    collector_cli.add_arrangement_parsers(commands)
    documents_cli.add_parser(commands)
    agencies_cli.add_parser(commands)
    preview.add_parser(commands)
    return parser


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]] = {
    "start": _start,
    "pay": _pay,
    "promise": _promise,
    "close": _close,
    "status": _status,
    **{name: _collector_action for name in collector_cli.ACTIONS},
    **{name: _arrangement for name in collector_cli.ARRANGEMENTS},
    "documents": documents_cli.run,
    "agencies": agencies_cli.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "preview":  # pure rendering: no settings, no Temporal
        return preview.run(args)
    try:
        settings = _settings()
        return asyncio.run(COMMANDS[args.command](args, settings))
    except _Invalid as error:
        for line in error.lines:
            print(line, file=sys.stderr)
        return EXIT_INVALID
    except InvalidRequest as error:  # found once the loan was known, e.g. a payment in another currency
        for line in _lines(error.problems):
            print(line, file=sys.stderr)
        return EXIT_INVALID
    except TemporalUnreachable as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except PromiseRejected as error:
        print(f"promise rejected: {error.reason}", file=sys.stderr)
        return EXIT_REJECTED
    except RequestRefused as error:
        print(f"{args.command} refused: {error.reason}", file=sys.stderr)
        return EXIT_REJECTED
    except (UnknownLoan, CollectionClosed, NotALoan, WorkflowIdTaken) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except StrategyError as error:
        for line in str(error).splitlines():
            print(line, file=sys.stderr)
        return EXIT_INVALID
    except RPCError as error:
        print(f"error: Temporal refused the request: {error.message} ({error.status.name})", file=sys.stderr)
        return EXIT_FAILED
    except WorkflowQueryFailedError as error:  # the workflow could not answer (e.g. a failing workflow task)
        print(f"error: the loan's workflow could not answer: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted; running the same command again is safe", file=sys.stderr)
        return 130
