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

from admin import metrics
from admin.charts import Series, bar_chart, compact, line_chart, percent, stacked_bar_chart
from admin.i18n import Translate, translator
from admin.web import CurrentUser, locale_of, render, services_of
from domain.loan import CURRENCIES

router = APIRouter()


def stage_names(_: Translate) -> dict[str, str]:
    return {
        "reminder": _("Reminder"),
        "deep_contact": _("Deep contact"),
        "agency": _("Agency placement"),
        "legal": _("Legal"),
        "closed": _("Closed"),
    }


def dpd_names(_: Translate) -> dict[str, str]:
    return {
        "0-30": _("0-30 days"),
        "31-60": _("31-60 days"),
        "61-90": _("61-90 days"),
        "91-180": _("91-180 days"),
        "180+": _("Over 180 days"),
    }


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


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, user: CurrentUser, currency: str | None = None) -> Response:
    pool = services_of(request).pool
    _ = translator(locale_of(request, user))
    currencies = await metrics.open_currencies(pool)
    codes = [found.currency for found in currencies]
    chosen = currency if currency in codes else (codes[0] if codes else "")
    async with asyncio.TaskGroup() as queries:  # each on a connection of its own
        book_query = queries.create_task(metrics.open_book(pool, chosen))
        promises_query = queries.create_task(metrics.promise_kept(pool))
        cures_query = queries.create_task(metrics.cure_by_stage(pool))
        rolls_query = queries.create_task(metrics.roll_rates(pool))
        by_stage_query = queries.create_task(metrics.recovered_by_stage(pool, chosen))
        by_agency_query = queries.create_task(metrics.recovered_by_agency(pool, chosen))
        deferrals_query = queries.create_task(metrics.deferrals_by_rule(pool))
    book, promises, cures = book_query.result(), promises_query.result(), cures_query.result()
    rolls, deferrals = rolls_query.result(), deferrals_query.result()
    by_stage, by_agency = by_stage_query.result(), by_agency_query.result()
    names, buckets = stage_names(_), dpd_names(_)

    def stage(key: str) -> str:
        return names.get(key, key)

    def dpd(key: str) -> str:
        return buckets.get(key, key)

    def agency(key: str) -> str:
        return by_agency.labels.get(key) or _("Unknown agency")

    axis = money_axis(chosen)
    weeks = [week_label(week) for week in by_stage.weeks]
    charts = Charts(
        stage_loans=Markup(
            bar_chart(
                [stage(b.key) for b in book.by_stage],
                [b.loans for b in book.by_stage],
                title=_("Open loans by stage"),
            )
        ),
        stage_amounts=Markup(
            bar_chart(
                [stage(b.key) for b in book.by_stage],
                [b.amount_overdue_minor for b in book.by_stage],
                title=_("Amount overdue by stage ({currency})", currency=chosen),
                value_format=axis,
            )
        ),
        dpd_loans=Markup(
            bar_chart(
                [dpd(b.key) for b in book.by_dpd],
                [b.loans for b in book.by_dpd],
                title=_("Open loans by days past due"),
            )
        ),
        dpd_amounts=Markup(
            bar_chart(
                [dpd(b.key) for b in book.by_dpd],
                [b.amount_overdue_minor for b in book.by_dpd],
                title=_("Amount overdue by days past due ({currency})", currency=chosen),
                value_format=axis,
            )
        ),
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
        recovered_stage=Markup(
            stacked_bar_chart(
                weeks,
                [
                    Series(stage(key), [by_stage.amount(week, key) for week in by_stage.weeks])
                    for key in by_stage.keys
                ],
                title=_("Recovered per week by stage ({currency})", currency=chosen),
                value_format=axis,
            )
        ),
        recovered_agency=Markup(
            stacked_bar_chart(
                [week_label(week) for week in by_agency.weeks],
                [
                    Series(agency(key), [by_agency.amount(week, key) for week in by_agency.weeks])
                    for key in by_agency.keys
                ],
                title=_("Recovered per week by agency ({currency})", currency=chosen),
                value_format=axis,
            )
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
        "charts": charts,
        "stage": stage,
        "dpd": dpd,
        "agency": agency,
        "week_label": week_label,
        "month_label": month_label,
        "count": count,
        "rate": rate,
    }
    return render(request, "dashboard.html", context)
