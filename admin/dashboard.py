"""The dashboard: charts of the portfolio and the journal, each with its numbers in a table.

GET /dashboard[?currency=CNY] (any logged-in user). Amounts are for one currency at a time (never added
across currencies): the one asked for, else the one with most open loans. Rates are counts of loans or
promises, so they cover every currency. The numbers come from admin/metrics.py (one aggregate query each),
the SVG from admin/charts.py; the charts get translated labels, the template the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from activities.dead_letters import dead_letter_count
from admin import metrics
from admin.charts import Series, bar_chart, compact, line_chart, percent, stacked_bar_chart
from admin.i18n import translator
from admin.portfolio_query import DPD_LABELS
from admin.self_service import self_service
from admin.web import STAGE_LABELS, CurrentUser, locale_of, render, services_of
from domain.loan import CURRENCIES

router = APIRouter()


def week_label(week: date) -> str:
    return week.strftime("%m-%d")


def month_label(month: date) -> str:
    return month.strftime("%Y-%m")


def money_axis(currency: str) -> Callable[[float], str]:
    """Axis ticks in major units, compact ('CNY 1.2M'), for amounts in minor units."""
    scale = 10 ** CURRENCIES.get(currency, 2)
    return lambda minor: f"{currency} {compact(minor / scale)}"


def count(value: int) -> str:
    return f"{value:,}"


def rate(value: float | None) -> str:
    return "—" if value is None else percent(value)


@dataclass(frozen=True)
class Charts:
    stage_loans: Markup
    stage_amounts: Markup
    dpd_loans: Markup
    dpd_amounts: Markup
    promises: Markup
    cure: Markup
    rolls: Markup
    recovered_stage: Markup
    recovered_agency: Markup
    deferrals: Markup


def _bars_of(
    buckets: list[metrics.Bucket],
    label: Callable[[str], str],
    axis: Callable[[float], str],
    *,
    loans: str,
    amounts: str,
) -> tuple[Markup, Markup]:
    """Two bar charts of `buckets`: open loans (titled `loans`) and amounts overdue (titled `amounts`)."""
    labels = [label(b.key) for b in buckets]
    return (
        Markup(bar_chart(labels, [b.loans for b in buckets], title=loans)),
        Markup(
            bar_chart(labels, [b.amount_overdue_minor for b in buckets], title=amounts, value_format=axis)
        ),
    )


def _weekly_chart(
    series: metrics.WeeklyAmounts, label: Callable[[str], str], axis: Callable[[float], str], *, title: str
) -> Markup:
    """A stacked bar per week of `series`, a segment per key."""
    return Markup(
        stacked_bar_chart(
            [week_label(week) for week in series.weeks],
            [Series(label(key), [series.amount(week, key) for week in series.weeks]) for key in series.keys],
            title=title,
            value_format=axis,
        )
    )


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, user: CurrentUser, currency: str | None = None) -> Response:
    pool = services_of(request).pool
    _ = translator(locale_of(request, user))
    async with asyncio.TaskGroup() as queries:  # each on a connection of its own
        # Rates cover every currency: they need not wait for the choice of currency.
        promises_query = queries.create_task(metrics.promise_kept(pool))
        cures_query = queries.create_task(metrics.cure_by_stage(pool))
        rolls_query = queries.create_task(metrics.roll_rates(pool))
        deferrals_query = queries.create_task(metrics.deferrals_by_rule(pool))
        # Supervisors see how many journal entries could not be written, with a link to them.
        supervisor = user.has_role("supervisor")
        dead_letters_query = queries.create_task(dead_letter_count(pool)) if supervisor else None
        currencies = await metrics.open_currencies(pool)
        codes = [found.currency for found in currencies]
        chosen = currency if currency in codes else (codes[0] if codes else "")
        book_query = queries.create_task(metrics.open_book(pool, chosen))
        by_stage_query = queries.create_task(metrics.recovered_by_stage(pool, chosen))
        by_agency_query = queries.create_task(metrics.recovered_by_agency(pool, chosen))
        self_service_query = queries.create_task(self_service(pool, chosen))
    book, promises, cures = book_query.result(), promises_query.result(), cures_query.result()
    rolls, deferrals = rolls_query.result(), deferrals_query.result()
    by_stage, by_agency = by_stage_query.result(), by_agency_query.result()

    def stage(key: str) -> str:
        return _(STAGE_LABELS.get(key, key))

    def dpd(key: str) -> str:
        return _(DPD_LABELS.get(key, key))

    def agency(key: str) -> str:
        return by_agency.labels.get(key) or _("Unknown agency")

    axis = money_axis(chosen)
    stage_loans, stage_amounts = _bars_of(
        book.by_stage,
        stage,
        axis,
        loans=_("Open loans by stage"),
        amounts=_("Amount overdue by stage ({currency})", currency=chosen),
    )
    dpd_loans, dpd_amounts = _bars_of(
        book.by_dpd,
        dpd,
        axis,
        loans=_("Open loans by days past due"),
        amounts=_("Amount overdue by days past due ({currency})", currency=chosen),
    )
    charts = Charts(
        stage_loans=stage_loans,
        stage_amounts=stage_amounts,
        dpd_loans=dpd_loans,
        dpd_amounts=dpd_amounts,
        promises=Markup(
            line_chart(
                [week_label(w.week) for w in promises.weeks],
                [Series(_("Promise-kept rate"), [w.rate for w in promises.weeks])],
                title=_("Promise-kept rate by week of due date"),
                value_format=percent,
                y_max=1.0,
            )
        ),
        cure=Markup(
            bar_chart(
                [stage(c.stage) for c in cures],
                [c.rate for c in cures],
                title=_("Cure rate by stage at exit"),
                value_format=percent,
            )
        ),
        rolls=Markup(
            line_chart(
                [month_label(m) for m in rolls.months],
                [
                    Series(stage(s), [rolls.cell(m, s).rate for m in rolls.months])
                    for s in metrics.ROLL_STAGES
                ],
                title=_("Roll rate by stage, month over month"),
                value_format=percent,
                y_max=1.0,
            )
        ),
        recovered_stage=_weekly_chart(
            by_stage, stage, axis, title=_("Recovered per week by stage ({currency})", currency=chosen)
        ),
        recovered_agency=_weekly_chart(
            by_agency, agency, axis, title=_("Recovered per week by agency ({currency})", currency=chosen)
        ),
        deferrals=Markup(
            bar_chart(
                [d.rule for d in deferrals],
                [d.deferrals for d in deferrals],
                title=_("Contacts deferred by rule, last 30 days"),
            )
        ),
    )
    context: dict[str, Any] = {
        "user": user,
        "currencies": currencies,
        "currency": chosen,
        "book": book,
        "promises": promises,
        "cures": cures,
        "rolls": rolls,
        "roll_stages": metrics.ROLL_STAGES,
        "by_stage": by_stage,
        "by_agency": by_agency,
        "deferrals": deferrals,
        "self_service": self_service_query.result(),
        "charts": charts,
        "dead_letters_total": dead_letters_query.result() if dead_letters_query is not None else None,
        "stage": stage,
        "dpd": dpd,
        "agency": agency,
        "week_label": week_label,
        "month_label": month_label,
        "count": count,
        "rate": rate,
    }
    return render(request, "dashboard.html", context)
