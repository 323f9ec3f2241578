"""`python -m starter preview`: render a borrower message template for a loan and print it. No Temporal.

    python -m starter preview --template reminder_polite --demo DEMO-0001
    python -m starter preview --template statement --channel email --locale en --demo DEMO-0002
    python -m starter preview --template second_reminder --loan-file loans.jsonl --loan-id L-1 \\
        [--jurisdiction us] [--validation-notice] [--today 2026-03-01]

The variables are those the workflow sends for the loan (amount_minor, currency, overdue_since, dpd, lender,
borrower_name, loan_id, jurisdiction), rendered exactly as the send_message activity renders them. Locale
and jurisdiction default to the loan's. Exit codes: 0 printed; 2 invalid input (an unknown template lists
the known ones); 1 the installed template files are broken.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import date
from pathlib import Path

from activities.templating import (
    CHANNELS,
    JURISDICTIONS,
    MessageTemplates,
    TemplateFileError,
    TemplateProblem,
    template_context,
)
from domain.loan import Loan, format_money
from stack.settings import DEFAULT_PAY_URL

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
LOCALES = ("zh-CN", "en")
DEMO_SEED = 7  # the seed `make run` loads the demo portfolio with
_DEMO_ID = re.compile(r"^DEMO-([0-9]{4})$")


class PreviewError(Exception):
    """Invalid preview input: the lines to print on stderr."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    preview = commands.add_parser(
        "preview", help="render a message template for a loan and print it (no Temporal needed)"
    )
    preview.add_argument("--template", required=True, metavar="NAME", help="e.g. reminder_polite")
    preview.add_argument("--channel", choices=CHANNELS, default="sms", help="default sms")
    preview.add_argument("--locale", choices=LOCALES, help="default: the borrower's locale")
    source = preview.add_mutually_exclusive_group()
    source.add_argument(
        "--demo", metavar="DEMO-NNNN", help="a loan of the demo portfolio (default DEMO-0001)"
    )
    source.add_argument("--loan-file", type=Path, metavar="FILE", help="loans as .json, .jsonl or .csv")
    preview.add_argument("--loan-id", metavar="ID", help="the loan of --loan-file (needed if it has several)")
    preview.add_argument("--jurisdiction", choices=JURISDICTIONS, help="default: the loan's jurisdiction")
    preview.add_argument(
        "--validation-notice",
        action="store_true",
        help="as if the workflow asked for the US validation notice",
    )
    preview.add_argument(
        "--today", type=date.fromisoformat, metavar="YYYY-MM-DD", help="the day DPD counts to (default today)"
    )


def loan_variables(
    loan: Loan, today: date, *, jurisdiction: str | None = None, validation_notice: bool = False
) -> dict[str, str]:
    """The variables the workflow sends for this loan before any payment (workflows/step_requests.py)."""
    variables = {
        "borrower_name": loan.borrower.name,
        "loan_id": loan.loan_id,
        "amount": format_money(loan.amount_overdue_minor, loan.currency),
        "amount_minor": str(loan.amount_overdue_minor),
        "currency": loan.currency,
        "dpd": str(max(0, (today - loan.overdue_since).days)),
        "overdue_since": loan.overdue_since.isoformat(),
        "lender": loan.lender,
        "jurisdiction": jurisdiction or loan.jurisdiction,
    }
    if validation_notice:
        variables["validation_notice"] = "included"
    return variables


def find_loan(args: argparse.Namespace, today: date) -> Loan:
    if args.loan_file is not None:
        return _loan_from_file(args.loan_file, args.loan_id)
    if args.loan_id is not None:
        raise PreviewError(["--loan-id: only with --loan-file (for the demo portfolio use --demo DEMO-0001)"])
    return _demo_loan(args.demo or "DEMO-0001", today)


def _loan_from_file(path: Path, loan_id: str | None) -> Loan:
    from starter.loaders import LoanFileError, load_loans

    try:
        loans = load_loans(path)
    except LoanFileError as error:
        raise PreviewError(error.problems) from None
    if loan_id is None:
        if len(loans) == 1:
            return loans[0]
        raise PreviewError([f"--loan-id: {path} has {len(loans)} loans; name one with --loan-id"])
    for loan in loans:
        if loan.loan_id == loan_id:
            return loan
    raise PreviewError([f"--loan-id: no loan {loan_id!r} in {path}"])


def _demo_loan(loan_id: str, today: date) -> Loan:
    from demo.portfolio import demo_portfolio

    match = _DEMO_ID.match(loan_id)
    if match is None or int(match[1]) == 0:
        raise PreviewError([f"--demo: expected a demo loan id DEMO-0001 to DEMO-9999, got {loan_id!r}"])
    # The portfolio is drawn in order from one seed: its first N loans are the same whatever the count.
    return demo_portfolio(int(match[1]), seed=DEMO_SEED, today=today)[-1]


def render_preview(args: argparse.Namespace, templates: MessageTemplates | None = None) -> str:
    templates = templates or MessageTemplates.load()
    if args.template not in templates.names:
        raise PreviewError(
            [f"--template: unknown template {args.template!r}", "known templates:"]
            + [f"  {name}" for name in templates.names]
        )
    today = args.today or date.today()
    loan = find_loan(args, today)
    locale = args.locale or loan.borrower.locale
    variables = loan_variables(
        loan, today, jurisdiction=args.jurisdiction, validation_notice=args.validation_notice
    )
    pay_url = os.environ.get("OVERDUE_PAY_URL") or DEFAULT_PAY_URL
    try:
        context = template_context(variables, locale=locale, loan_id=loan.loan_id, pay_url=pay_url)
        text = templates.render(args.template, locale, args.channel, context)
    except TemplateProblem as error:
        raise PreviewError([str(error)]) from None
    header = (
        f"template  {args.template} · {args.channel} · {locale} · version {text.version}\n"
        f"loan      {loan.loan_id} · jurisdiction {variables['jurisdiction']} · DPD {variables['dpd']}"
    )
    lines = [header]
    if text.subject is not None:
        lines.append(f"{'title' if args.channel == 'push' else 'subject':<9} {text.subject}")
    lines += ["", text.body]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        print(render_preview(args))
    except PreviewError as error:
        for line in error.lines:
            print(line, file=sys.stderr)
        return EXIT_INVALID
    except TemplateFileError as error:  # the installed templates themselves are broken
        print(error, file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
