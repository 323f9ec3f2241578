"""What supervisors watch besides the dashboard: journal entries that could not be written (dead letters), and
the admin's figures for Prometheus.

GET /journal/dead-letters (supervisors): the entries the journal activity kept apart (journal_dead_letters,
migrations/0012) because a table refused them, newest first: kind, loan, collection cycle, when, and the
reason (which names the field or the constraint). What the entry held is not shown: it may carry a
collector's free text, and the reason is what a supervisor needs to have it fixed.

GET /metrics (no login: Prometheus scrapes it): counts only, no labels, nothing about a borrower or a loan.
`overdue_journal_dead_letters` is the number of dead letters, so an alert can fire on any above zero.
"""

from __future__ import annotations

from datetime import UTC

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse

from activities.dead_letters import dead_letter_count, dead_letters
from admin.web import Supervisor, render, services_of

router = APIRouter()

DEAD_LETTERS_SHOWN = 200
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/journal/dead-letters", response_class=HTMLResponse)
async def dead_letters_page(request: Request, user: Supervisor) -> Response:
    pool = services_of(request).pool
    rows = await dead_letters(pool, DEAD_LETTERS_SHOWN)
    total = await dead_letter_count(pool)
    context = {"user": user, "rows": rows, "total": total, "shown": len(rows), "utc": UTC}
    return render(request, "dead_letters.html", context)


def prometheus_text(dead_letters_total: int) -> str:
    """The exposition format: HELP, TYPE and one sample per metric, no labels."""
    return (
        "# HELP overdue_journal_dead_letters Journal entries that could not be written, kept apart with "
        "the reason (journal_dead_letters).\n"
        "# TYPE overdue_journal_dead_letters gauge\n"
        f"overdue_journal_dead_letters {dead_letters_total}\n"
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus_metrics(request: Request) -> Response:
    total = await dead_letter_count(services_of(request).pool)
    return PlainTextResponse(prometheus_text(total), media_type=PROMETHEUS_CONTENT_TYPE)
