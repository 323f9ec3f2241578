"""The dossier's action forms against the real LoanCollectionWorkflow (fake activities), local dev server.

Each action: a success that the workflow's status reflects, and a rejection shown next to the field (422) with
the status unchanged. Supervisor actions are refused (403) to collectors and absent from their dossier; a
POST without the session's CSRF token is refused and changes nothing.
"""

from __future__ import annotations

import asyncio
import html
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from domain.loan import Loan
from starter.api import CollectionsStarter
from tests.admin.conftest import MakeClient, MakeUser, login, post_form, zone_at
from tests.workflows.conftest import SHANGHAI, make_loan
from tests.workflows.fakes import FakeActivities
from workflows.messages import CollectionStatus
from workflows.registry import WORKFLOWS

StartLoan = Callable[..., Awaitable[Loan]]


@pytest_asyncio.fixture
async def start_loan(
    local_client: Client, task_queue: str, starter: CollectionsStarter
) -> AsyncIterator[StartLoan]:
    """Starts CNY loans 20 days past due with 800.00 overdue (or another jurisdiction's), on one worker."""
    started: list[str] = []
    async with Worker(
        local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=FakeActivities().all()
    ):

        async def start(jurisdiction: str = "cn", timezone: str | None = None) -> Loan:
            loan = make_loan(datetime.now(UTC), dpd=20, amount=80_000, timezone=timezone or "Asia/Shanghai")
            loan = loan.model_copy(
                update={
                    "loan_id": f"ACT-{uuid.uuid4().hex[:8]}",
                    "jurisdiction": jurisdiction,
                }
            )
            assert await starter.start_loan(loan) == "started"
            started.append(loan.loan_id)
            return loan

        yield start
        for loan_id in started:
            try:
                await starter.handle(loan_id).terminate("test finished")
            except RPCError:
                pass  # closed by the test


async def logged_in(make_client: MakeClient, make_user: MakeUser, role: str) -> httpx.AsyncClient:
    client = await make_client()
    await login(client, (await make_user(role)).username)
    return client


def inline(page: str, key: str) -> str | None:
    """The reason shown next to input `key` (or `<action>_form` for the whole form), unescaped."""
    found = re.search(rf'id="{re.escape(key)}-error"[^>]*>([^<]*)<', page)
    return html.unescape(found.group(1)) if found else None


def local_input(days: int, hour: int = 15) -> str:
    """A datetime-local value, borrower (Shanghai) wall-clock time, `days` from today."""
    day = datetime.now(UTC).astimezone(SHANGHAI).date() + timedelta(days=days)
    return f"{day.isoformat()}T{hour:02d}:30"


async def contact_of(starter: CollectionsStarter, loan: Loan) -> CollectionStatus:
    status = await starter.status(loan.loan_id)
    assert status.contact is not None
    return status


# -- collectors' actions -------------------------------------------------------------------------------------


async def test_a_call_outcome_reaches_the_workflow_and_a_bad_callback_is_refused(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    client = await logged_in(make_client, make_user, "collector")
    page = f"/loans/{loan.loan_id}"
    dossier = (await client.get(page)).text
    assert "Record a call outcome" in dossier and 'name="outcome_callback_at"' in dossier

    past = await post_form(
        client,
        page,
        f"{page}/outcome",
        {"outcome_outcome": "callback_requested", "outcome_callback_at": local_input(-1)},
    )
    assert past.status_code == 422
    assert inline(past.text, "outcome_callback_at") == "must be in the future"
    missing = await post_form(client, page, f"{page}/outcome", {"outcome_outcome": "callback_requested"})
    assert missing.status_code == 422 and "required" in (inline(missing.text, "outcome_callback_at") or "")
    unknown = await post_form(client, page, f"{page}/outcome", {"outcome_outcome": "shouted"})
    assert unknown.status_code == 422 and inline(unknown.text, "outcome_outcome")
    assert (await starter.status(loan.loan_id)).callbacks == []

    done = await post_form(
        client,
        page,
        f"{page}/outcome",
        {
            "outcome_outcome": "callback_requested",
            "outcome_callback_at": local_input(1),
            "outcome_note": "after work",
        },
    )
    assert done.status_code == 303 and done.headers["location"] == f"{page}?notice=outcome"
    status = await starter.status(loan.loan_id)
    tomorrow = datetime.fromisoformat(local_input(1)).replace(tzinfo=SHANGHAI)
    assert status.callbacks == [tomorrow]
    assert "Call outcome recorded." in (await client.get(done.headers["location"])).text

    wrong = await post_form(client, page, f"{page}/outcome", {"outcome_outcome": "wrong_number"})
    assert wrong.status_code == 303
    status = await contact_of(starter, loan)
    assert status.contact is not None and status.contact.unreachable_addresses == [loan.borrower.phone]


async def test_a_dispute_is_raised_and_resolved_once(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    client = await logged_in(make_client, make_user, "collector")
    page = f"/loans/{loan.loan_id}"

    resolved_early = await post_form(
        client, page, f"{page}/dispute/resolve", {"resolve_verification_sent": "yes"}
    )
    assert resolved_early.status_code == 422
    assert inline(resolved_early.text, "resolve_form") == "no dispute is open"

    raised = await post_form(client, page, f"{page}/dispute", {"dispute_note": "says it was paid"})
    assert raised.status_code == 303 and raised.headers["location"] == f"{page}?notice=dispute"
    status = await contact_of(starter, loan)
    assert status.contact is not None and status.contact.dispute_open
    dossier = (await client.get(raised.headers["location"])).text
    assert "Dispute raised." in dossier and "Resolve the dispute" in dossier

    again = await post_form(client, page, f"{page}/dispute", {})
    assert again.status_code == 422 and inline(again.text, "dispute_form") == "a dispute is already open"

    resolved = await post_form(client, page, f"{page}/dispute/resolve", {"resolve_verification_sent": "yes"})
    assert resolved.status_code == 303
    status = await contact_of(starter, loan)
    assert status.contact is not None and not status.contact.dispute_open


async def test_a_hardship_hold_runs_for_its_days_and_a_shorter_one_is_refused(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    client = await logged_in(make_client, make_user, "collector")
    page = f"/loans/{loan.loan_id}"

    zero = await post_form(client, page, f"{page}/hardship", {"hardship_days": "0"})
    assert zero.status_code == 422 and inline(zero.text, "hardship_days")
    assert 'value="0"' in zero.text  # what the collector typed is kept

    held = await post_form(client, page, f"{page}/hardship", {"hardship_days": "30"})
    assert held.status_code == 303
    status = await contact_of(starter, loan)
    assert status.contact is not None and status.contact.hardship_until is not None
    until = status.contact.hardship_until
    assert abs(until - (status.collections_now + timedelta(days=30))) < timedelta(minutes=5)

    shorter = await post_form(client, page, f"{page}/hardship", {"hardship_days": "10"})
    assert shorter.status_code == 422
    assert (inline(shorter.text, "hardship_days") or "").startswith("a hardship hold already runs until")
    status = await contact_of(starter, loan)
    assert status.contact is not None and status.contact.hardship_until == until


async def test_breathing_space_exists_only_under_the_uk_profile(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    client = await logged_in(make_client, make_user, "collector")
    cn_loan, uk_loan = await start_loan(), await start_loan("uk")
    cn_page, uk_page = f"/loans/{cn_loan.loan_id}", f"/loans/{uk_loan.loan_id}"

    assert 'action="' + cn_page + '/breathing-space"' not in (await client.get(cn_page)).text
    refused = await post_form(client, cn_page, f"{cn_page}/breathing-space", {})
    assert refused.status_code == 422
    assert inline(refused.text, "breathing_form") == "Breathing Space does not exist under the cn profile"
    status = await contact_of(starter, cn_loan)
    assert status.contact is not None and status.contact.breathing_space_until is None

    assert 'action="' + uk_page + '/breathing-space"' in (await client.get(uk_page)).text
    started = await post_form(client, uk_page, f"{uk_page}/breathing-space", {"breathing_reference": "DRS-1"})
    assert started.status_code == 303
    status = await contact_of(starter, uk_loan)
    assert status.contact is not None and status.contact.breathing_space_until is not None
    assert status.escalation_hold and status.escalation_hold.startswith("Breathing Space until")

    again = await post_form(client, uk_page, f"{uk_page}/breathing-space", {})
    assert again.status_code == 422
    assert (inline(again.text, "breathing_form") or "").startswith("Breathing Space already runs until")


async def test_contact_ceases_once(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    client = await logged_in(make_client, make_user, "collector")
    page = f"/loans/{loan.loan_id}"

    ceased = await post_form(client, page, f"{page}/cease", {"cease_note": "asked in writing"})
    assert ceased.status_code == 303 and ceased.headers["location"] == f"{page}?notice=cease"
    status = await contact_of(starter, loan)
    assert status.contact is not None and status.contact.cease_all

    again = await post_form(client, page, f"{page}/cease", {})
    assert again.status_code == 422 and inline(again.text, "cease_form") == "contact has already ceased"


async def test_opt_outs_of_a_channel_and_an_address(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    assert loan.borrower.email is not None
    client = await logged_in(make_client, make_user, "collector")
    page = f"/loans/{loan.loan_id}"

    nothing = await post_form(client, page, f"{page}/opt-out", {"optout_target": ""})
    assert nothing.status_code == 422 and inline(nothing.text, "optout_target")
    stranger = await post_form(client, page, f"{page}/opt-out", {"optout_target": "address:x@example.com"})
    assert stranger.status_code == 422
    assert inline(stranger.text, "optout_target") == "not one of this loan's contact points"

    sms = await post_form(client, page, f"{page}/opt-out", {"optout_target": "channel:sms"})
    assert sms.status_code == 303
    email = await post_form(
        client, page, f"{page}/opt-out", {"optout_target": f"address:{loan.borrower.email}"}
    )
    assert email.status_code == 303
    status = await contact_of(starter, loan)
    assert status.contact is not None
    assert (status.contact.opted_out_channels, status.contact.opted_out_addresses) == (
        ["sms"],
        [loan.borrower.email],
    )

    again = await post_form(client, page, f"{page}/opt-out", {"optout_target": "channel:sms"})
    assert again.status_code == 422 and inline(again.text, "optout_target") == "already opted out of sms"
    status = await contact_of(starter, loan)
    assert status.contact is not None and status.contact.opted_out_channels == ["sms"]


async def test_a_post_without_the_csrf_token_changes_nothing(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    client = await logged_in(make_client, make_user, "supervisor")
    page = f"/loans/{loan.loan_id}"
    before = await starter.status(loan.loan_id)
    for action, data in [
        ("dispute", {}),
        ("hardship", {"hardship_days": "30"}),
        ("cease", {}),
        ("opt-out", {"optout_target": "channel:sms"}),
        ("outcome", {"outcome_outcome": "wrong_number"}),
        ("close", {"reason": "other"}),
    ]:
        refused = await client.post(f"{page}/{action}", data={"csrf_token": "forged", **data})
        assert refused.status_code == 403, action
        assert "expired or did not come from this site" in refused.text
    after = await starter.status(loan.loan_id)
    assert after.contact == before.contact and after.outcome is None and after.callbacks == []


def in_days(days: int, zone: ZoneInfo = SHANGHAI) -> str:
    """The borrower-local date `days` from today (the admin UI's dates are the borrower's)."""
    return (datetime.now(UTC).astimezone(zone).date() + timedelta(days=days)).isoformat()


async def test_a_repayment_plan_of_the_filled_rows_reaches_the_workflow(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    collector = await make_user("collector")
    client = await make_client()
    await login(client, collector.username)
    page = f"/loans/{loan.loan_id}"
    assert 'name="plan_amount_6"' in (await client.get(page)).text

    one_row = await post_form(
        client, page, f"{page}/plan", {"plan_amount_1": "100", "plan_due_date_1": in_days(5)}
    )
    assert one_row.status_code == 422 and "at least 2" in (inline(one_row.text, "plan_form") or "")
    half = await post_form(
        client,
        page,
        f"{page}/plan",
        {"plan_amount_1": "100", "plan_due_date_1": in_days(5), "plan_due_date_2": in_days(9)},
    )
    assert half.status_code == 422 and inline(half.text, "plan_amount_2") == "required"
    # Row 2 left empty: the workflow's complaint about the second instalment lands on row 3.
    backwards = await post_form(
        client,
        page,
        f"{page}/plan",
        {
            "plan_amount_1": "300",
            "plan_due_date_1": in_days(20),
            "plan_amount_3": "300",
            "plan_due_date_3": in_days(10),
        },
    )
    assert backwards.status_code == 422
    assert "is not after" in (inline(backwards.text, "plan_due_date_3") or "")
    assert '<details id="plan" open>' in backwards.text and f'value="{in_days(10)}"' in backwards.text
    assert (await starter.status(loan.loan_id)).repayment_plan is None

    arranged = await post_form(
        client,
        page,
        f"{page}/plan",
        {
            "plan_amount_1": "300",
            "plan_due_date_1": in_days(10),
            "plan_amount_3": "250.50",
            "plan_due_date_3": in_days(40),
            "plan_note": "salary days",
        },
    )
    assert arranged.status_code == 303 and arranged.headers["location"] == f"{page}?notice=plan"
    plan = (await starter.status(loan.loan_id)).repayment_plan
    assert plan is not None and plan.status == "open" and plan.collector == collector.username
    assert [(i.amount_minor, i.due_date.isoformat()) for i in plan.instalments] == [
        (30_000, in_days(10)),
        (25_050, in_days(40)),
    ]
    assert "Repayment plan arranged." in (await client.get(arranged.headers["location"])).text

    # One open arrangement per loan: a promise now is refused, for the whole form.
    promise = await post_form(client, page, f"{page}/promise", {"amount": "100", "due_date": in_days(3)})
    assert promise.status_code == 422 and "repayment plan is still open" in (
        inline(promise.text, "promise_form") or ""
    )


# -- supervisors' actions ------------------------------------------------------------------------------------

SUPERVISOR_ACTIONS = [
    "settlement",
    "waiver",
    "stage-hold",
    "stage-hold/release",
    "escalate",
    "recall",
    "close",
]


async def test_collectors_neither_see_nor_reach_the_supervisor_actions(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    page = f"/loans/{loan.loan_id}"
    collector = await logged_in(make_client, make_user, "collector")
    supervisor = await logged_in(make_client, make_user, "supervisor")

    shown = (await collector.get(page)).text
    assert "Record a call outcome" in shown and "Supervisor actions" not in shown
    for action in SUPERVISOR_ACTIONS:
        assert f'action="{page}/{action}"' not in shown
    supervised = (await supervisor.get(page)).text
    assert "Supervisor actions" in supervised and "Record a call outcome" in supervised
    for action in ["settlement", "waiver", "stage-hold", "escalate", "close"]:
        assert f'action="{page}/{action}"' in supervised

    before = await starter.status(loan.loan_id)
    data = {
        "settlement_amount": "500",
        "settlement_due_date": in_days(10),
        "waiver_amount": "100",
        "waiver_reason": "goodwill",
        "stagehold_until": in_days(10),
        "stagehold_reason": "x",
        "escalate_reason": "x",
        "recall_reason": "x",
        "reason": "other",
    }
    for action in SUPERVISOR_ACTIONS:
        refused = await post_form(collector, page, f"{page}/{action}", data)
        assert refused.status_code == 403 and "needs the supervisor role" in refused.text, action
    after = await starter.status(loan.loan_id)
    assert (after.settlement, after.waived_total_minor, after.stage_hold, after.stage, after.outcome) == (
        None,
        0,
        None,
        before.stage,
        None,
    )


async def test_a_settlement_is_approved_for_less_than_the_arrears(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    approver = await make_user("supervisor")
    client = await make_client()
    await login(client, approver.username)
    page = f"/loans/{loan.loan_id}"

    too_much = await post_form(
        client, page, f"{page}/settlement", {"settlement_amount": "800", "settlement_due_date": in_days(10)}
    )
    assert too_much.status_code == 422
    assert "is not less than the amount overdue" in (inline(too_much.text, "settlement_amount") or "")
    too_late = await post_form(
        client, page, f"{page}/settlement", {"settlement_amount": "500", "settlement_due_date": in_days(90)}
    )
    assert too_late.status_code == 422 and "more than 60 days ahead" in (
        inline(too_late.text, "settlement_due_date") or ""
    )
    assert (await starter.status(loan.loan_id)).settlement is None

    approved = await post_form(
        client,
        page,
        f"{page}/settlement",
        {"settlement_amount": "500", "settlement_due_date": in_days(10), "settlement_note": "final offer"},
    )
    assert approved.status_code == 303 and approved.headers["location"] == f"{page}?notice=settlement"
    offer = (await starter.status(loan.loan_id)).settlement
    assert offer is not None and offer.status == "open"
    assert (offer.amount_minor, offer.approver, offer.note) == (50_000, approver.username, "final offer")
    assert "Settlement approved." in (await client.get(approved.headers["location"])).text


async def test_an_interest_waiver_lowers_the_arrears(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    approver = await make_user("supervisor")
    client = await make_client()
    await login(client, approver.username)
    page = f"/loans/{loan.loan_id}"

    too_much = await post_form(client, page, f"{page}/waiver", {"waiver_amount": "900", "waiver_reason": "x"})
    assert too_much.status_code == 422 and "is more than the amount overdue" in (
        inline(too_much.text, "waiver_amount") or ""
    )
    no_reason = await post_form(client, page, f"{page}/waiver", {"waiver_amount": "100"})
    assert no_reason.status_code == 422 and inline(no_reason.text, "waiver_reason") == "required"
    assert (await starter.status(loan.loan_id)).amount_overdue_minor == 80_000

    waived = await post_form(
        client, page, f"{page}/waiver", {"waiver_amount": "100", "waiver_reason": "goodwill"}
    )
    assert waived.status_code == 303
    status = await starter.status(loan.loan_id)
    assert (status.amount_overdue_minor, status.waived_total_minor) == (70_000, 10_000)
    assert [(w.approver, w.reason) for w in status.waivers] == [(approver.username, "goodwill")]


async def test_stage_hold_release_escalation_and_recall(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    # The dev server's real clock: the borrower lives where it is 13:00, so the escalated stage's first step
    # (the agency placement) is due at once, whatever time the test runs.
    zone = zone_at(13)
    loan = await start_loan(timezone=zone.key)
    approver = await make_user("supervisor")
    client = await make_client()
    await login(client, approver.username)
    page = f"/loans/{loan.loan_id}"
    stage = (await starter.status(loan.loan_id)).stage

    today = await post_form(
        client, page, f"{page}/stage-hold", {"stagehold_until": in_days(0, zone), "stagehold_reason": "x"}
    )
    assert today.status_code == 422 and "is not after today" in (inline(today.text, "stagehold_until") or "")
    release_early = await post_form(client, page, f"{page}/stage-hold/release", {"release_reason": "x"})
    assert (
        release_early.status_code == 422
        and inline(release_early.text, "release_form") == "the stage is not held"
    )
    recall_early = await post_form(client, page, f"{page}/recall", {"recall_reason": "x"})
    assert (
        recall_early.status_code == 422
        and inline(recall_early.text, "recall_form") == "not placed with an agency"
    )

    until = in_days(10, zone)
    held = await post_form(
        client, page, f"{page}/stage-hold", {"stagehold_until": until, "stagehold_reason": "talks"}
    )
    assert held.status_code == 303
    status = await starter.status(loan.loan_id)
    assert status.stage_hold is not None and status.stage_hold.until.isoformat() == in_days(10, zone)
    assert status.stage_hold.approver == approver.username
    assert f'action="{page}/stage-hold/release"' in (await client.get(page)).text

    blocked = await post_form(client, page, f"{page}/escalate", {"escalate_reason": "no contact"})
    assert blocked.status_code == 422 and "the stage is held until" in (
        inline(blocked.text, "escalate_form") or ""
    )
    assert (await starter.status(loan.loan_id)).stage == stage

    released = await post_form(client, page, f"{page}/stage-hold/release", {"release_reason": "talks failed"})
    assert released.status_code == 303
    assert (await starter.status(loan.loan_id)).stage_hold is None

    escalated = await post_form(client, page, f"{page}/escalate", {"escalate_reason": "no contact"})
    assert escalated.status_code == 303 and escalated.headers["location"] == f"{page}?notice=escalated"
    status = await starter.status(loan.loan_id)
    assert status.stage != stage

    # The agency stage places the account at once (fake agency); the supervisor takes it back.
    for _ in range(50):
        if (status := await starter.status(loan.loan_id)).agency_placement_id:
            break
        await asyncio.sleep(0.1)
    assert status.stage == "agency" and status.agency_placement_id
    assert f'action="{page}/recall"' in (await client.get(page)).text
    recalled = await post_form(client, page, f"{page}/recall", {"recall_reason": "complaint"})
    assert recalled.status_code == 303 and recalled.headers["location"] == f"{page}?notice=recalled"
    again = await post_form(client, page, f"{page}/recall", {"recall_reason": "complaint"})
    assert again.status_code == 422 and inline(again.text, "recall_form")


async def test_a_supervisor_closes_the_collection(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    client = await logged_in(make_client, make_user, "supervisor")
    page = f"/loans/{loan.loan_id}"

    unknown = await post_form(client, page, f"{page}/close", {"reason": "bored"})
    assert unknown.status_code == 422 and 'id="close" open' in unknown.text
    assert (await starter.status(loan.loan_id)).outcome is None

    closed = await post_form(client, page, f"{page}/close", {"reason": "restructured", "note": "new loan"})
    assert closed.status_code == 303 and closed.headers["location"] == f"{page}?notice=closed"
    for _ in range(50):
        if (status := await starter.status(loan.loan_id)).outcome:
            break
        await asyncio.sleep(0.1)
    assert status.outcome == "closed_by_servicing"
    assert "The collection has ended: no more actions." in (await client.get(page)).text


async def test_working_a_claimed_task_to_an_outcome_takes_it_off_the_queue(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, db_pool: asyncpg.Pool
) -> None:
    # Claiming the call asks the contact rules: the borrower lives where it is noon now.
    loan = await start_loan(timezone=zone_at(12).key)
    collector = await make_user("collector")
    client = await make_client()
    await login(client, collector.username)
    task_id = await db_pool.fetchval(
        "INSERT INTO collector_tasks (idempotency_key, loan_id, step_key, kind, due_at, priority, pool) "
        "VALUES ($1, $2, 'call-1', 'call', now() - interval '1 minute', 900, 'default') RETURNING id",
        f"{loan.loan_id}:call-1",
        loan.loan_id,
    )
    claimed = await post_form(client, "/", f"/tasks/{task_id}/claim", {})
    assert claimed.headers["location"] == f"/loans/{loan.loan_id}"

    page = f"/loans/{loan.loan_id}"
    refused = await post_form(client, page, f"{page}/outcome", {"outcome_outcome": "shouted"})
    assert refused.status_code == 422  # a rejected outcome leaves the task in the collector's hands
    assert (
        await db_pool.fetchval("SELECT status FROM collector_tasks WHERE id = $1", task_id) == "in_progress"
    )

    done = await post_form(client, page, f"{page}/outcome", {"outcome_outcome": "no_answer"})
    assert done.status_code == 303
    row = await db_pool.fetchrow("SELECT status, outcome FROM collector_tasks WHERE id = $1", task_id)
    assert row is not None and (row["status"], row["outcome"]) == ("done", "no_answer")
    assert str(task_id) not in (await client.get("/")).text


# -- amounts and text as typed -------------------------------------------------------------------------------


async def test_amounts_that_are_not_plain_decimals_are_field_errors_never_a_500(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    client = await logged_in(make_client, make_user, "supervisor")
    page = f"/loans/{loan.loan_id}"
    cases = {
        "1e3": "enter an amount like 500.00",
        "１２３": "enter an amount like 500.00",
        "9" * 5000: "too large: at most CNY 10,000,000,000,000.00",
        "1.234": "at most 2 decimal places for CNY",
    }

    for amount, reason in cases.items():
        waiver = await post_form(
            client, page, f"{page}/waiver", {"waiver_amount": amount, "waiver_reason": "x"}
        )
        promise = await post_form(client, page, f"{page}/promise", {"amount": amount, "due_date": in_days(3)})
        plan = await post_form(
            client,
            page,
            f"{page}/plan",
            {
                "plan_amount_1": amount,
                "plan_due_date_1": in_days(10),
                "plan_amount_2": "100",
                "plan_due_date_2": in_days(40),
            },
        )

        assert (waiver.status_code, promise.status_code, plan.status_code) == (422, 422, 422), amount
        assert (inline(waiver.text, "waiver_amount") or "").startswith(reason), amount
        assert (inline(promise.text, "amount") or "").startswith(reason), amount
        assert (inline(plan.text, "plan_amount_1") or "").startswith(reason), amount
    status = await starter.status(loan.loan_id)
    assert (status.waived_total_minor, status.open_promise, status.repayment_plan) == (0, None, None)


async def test_a_note_with_a_bidi_override_or_a_nul_is_a_field_error(
    make_client: MakeClient, make_user: MakeUser, start_loan: StartLoan, starter: CollectionsStarter
) -> None:
    loan = await start_loan()
    client = await logged_in(make_client, make_user, "collector")
    page = f"/loans/{loan.loan_id}"

    for note, reason in (("pay\u202eday", "U+202E RIGHT-TO-LEFT OVERRIDE"), ("pay\x00day", "U+0000 (NUL)")):
        refused = await post_form(
            client, page, f"{page}/promise", {"amount": "100", "due_date": in_days(3), "note": note}
        )

        assert refused.status_code == 422
        assert reason in html.unescape(refused.text)  # shown on the page; nothing recorded
    assert (await starter.status(loan.loan_id)).promises == []
