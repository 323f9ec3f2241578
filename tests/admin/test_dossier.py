"""The loan dossier against the real workflow (fake activities) and PostgreSQL: the borrower and the states of
their contact points (masked for collectors, revealed one at a time with a reason), holds, payments, promises,
the journal as a timeline, placements and letters; every view, download and reveal in read_audit."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from domain.holds import ContactOutcome, HardshipHold, OptOut, PreferredHours
from domain.loan import Loan
from starter.api import CollectionsStarter
from tests.admin.conftest import MakeClient, MakeUser, login
from tests.workflows.conftest import make_loan
from tests.workflows.fakes import FakeActivities
from workflows.messages import (
    CONTACT_OUTCOME_UPDATE,
    HARDSHIP_HOLD_UPDATE,
    OPT_OUT_UPDATE,
    PREFERRED_HOURS_UPDATE,
)
from workflows.registry import WORKFLOWS

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest_asyncio.fixture
async def running_loan(
    local_client: Client, task_queue: str, starter: CollectionsStarter
) -> AsyncIterator[Loan]:
    """A CNY loan 20 days past due with 800.00 overdue, its workflow running on a worker with fakes."""
    loan = make_loan(datetime.now(UTC), dpd=20, amount=80_000)
    loan = loan.model_copy(update={"loan_id": f"DOS-{uuid.uuid4().hex[:8]}"})
    async with Worker(
        local_client, task_queue=task_queue, workflows=WORKFLOWS, activities=FakeActivities().all()
    ):
        assert await starter.start_loan(loan) == "started"
        yield loan
        await starter.handle(loan.loan_id).terminate("test finished")


async def journal(pool: asyncpg.Pool, table: str, loan_id: str, at: datetime, **columns: Any) -> None:
    """One journal row, as the record_journal activity would write it (the fakes write none)."""
    values: dict[str, Any] = {"idempotency_key": f"{loan_id}:{uuid.uuid4().hex}", "loan_id": loan_id}
    values |= {"jurisdiction": "cn", "at": at, **columns}
    names = ", ".join(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await pool.execute(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", *values.values())


async def store_document(pool: asyncpg.Pool, loan_id: str, content: bytes = PDF) -> str:
    document_id = await pool.fetchval(
        "INSERT INTO legal_documents (idempotency_key, loan_id, locale, sha256, size_bytes, content) "
        "VALUES ($1, $2, 'zh-CN', $3, $4, $5) RETURNING id",
        f"{loan_id}:letter:{uuid.uuid4().hex}",
        loan_id,
        hashlib.sha256(content).hexdigest(),
        len(content),
        content,
    )
    return str(document_id)


def section(html: str, section_id: str) -> str:
    found = re.search(rf'<section id="{section_id}">(.*?)</section>', html, re.S)
    assert found, f"no section {section_id}"
    return found.group(1)


async def test_the_dossier_shows_the_borrower_and_the_state_of_each_contact_point(
    make_client: MakeClient, make_user: MakeUser, running_loan: Loan, starter: CollectionsStarter
) -> None:
    loan_id = running_loan.loan_id
    collector = starter.acting_as("operator").name  # the starter's own key signs these requests
    await starter.collector_action(loan_id, OPT_OUT_UPDATE, OptOut(collector=collector, channel="sms"))
    await starter.collector_action(
        loan_id, OPT_OUT_UPDATE, OptOut(collector=collector, address="li.lei@example.cn")
    )
    await starter.collector_action(
        loan_id, CONTACT_OUTCOME_UPDATE, ContactOutcome(collector=collector, outcome="wrong_number")
    )
    await starter.collector_action(
        loan_id, PREFERRED_HOURS_UPDATE, PreferredHours(collector=collector, start=time(10), end=time(12))
    )
    await starter.collector_action(loan_id, HARDSHIP_HOLD_UPDATE, HardshipHold(collector=collector, days=30))

    client = await make_client()
    await login(client, (await make_user("collector")).username)
    page = await client.get(f"/loans/{loan_id}")
    assert page.status_code == 200
    # A collector sees contact data masked, everywhere on the page (the opt-out form names the kind).
    assert "+8613800138000" not in page.text and "li.lei@example.cn" not in page.text
    assert "世纪大道" not in page.text
    supervisor = await make_client()
    await login(supervisor, (await make_user("supervisor")).username)
    html = (await supervisor.get(f"/loans/{loan_id}")).text

    borrower = section(html, "borrower")
    assert "李雷" in borrower and "zh-CN" in borrower and "Asia/Shanghai" in borrower
    assert 'class="local-now"' in borrower
    phone = re.search(r'id="contact-phone">(.*?)</tr>', borrower, re.S)
    email = re.search(r'id="contact-email">(.*?)</tr>', borrower, re.S)
    app = re.search(r'id="contact-app">(.*?)</tr>', borrower, re.S)
    assert phone and email and app
    assert "+8613800138000" in phone.group(1)  # unmasked for a supervisor
    assert "unreachable" in phone.group(1) and "opted out of SMS" in phone.group(1)
    assert "preferred hours 10:00–12:00" in phone.group(1)
    assert "li.lei@example.cn" in email.group(1) and "opted out" in email.group(1)
    assert "unreachable" not in email.group(1)
    assert loan_id in app.group(1) and "reachable" in app.group(1) and "opted out" not in app.group(1)
    holds = re.search(r'<ul id="holds">(.*?)</ul>', borrower, re.S)
    assert holds and "Hardship" in holds.group(1) and "until" in holds.group(1)

    status = section(html, "status")
    assert "CNY 3,200.00" in status and "CNY 800.00" in status and "CNY 0.00" in status
    assert ">20<" in status  # days past due
    assert (datetime.now(UTC).date() - timedelta(days=20)).isoformat()[:7] in status  # overdue since


async def test_the_dossier_shows_payments_promises_and_the_journal_as_a_timeline(
    make_client: MakeClient, make_user: MakeUser, running_loan: Loan, db_pool: asyncpg.Pool
) -> None:
    loan_id = running_loan.loan_id
    now = datetime.now(UTC)
    at = now - timedelta(days=2)
    await journal(
        db_pool,
        "journal_stage_transitions",
        loan_id,
        at,
        from_stage="reminder",
        to_stage="deep",
        dpd=19,
        reason="strategy: DPD 19",
    )
    await journal(
        db_pool,
        "journal_contact_attempts",
        loan_id,
        at + timedelta(minutes=1),
        channel="sms",
        template="reminder_1",
        status="sent",
        address_kind="phone",
        actor="workflow",
    )
    await journal(
        db_pool,
        "journal_deferrals",
        loan_id,
        at + timedelta(minutes=2),
        step_key="call-1",
        channel="call",
        rule="hours",
        reason="outside contact hours",
        deferred_from=at,
        deferred_until=at + timedelta(hours=9),
    )
    await journal(
        db_pool,
        "journal_holds",
        loan_id,
        at + timedelta(minutes=3),
        kind="dispute",
        action="raised",
        detail="says it was paid",
        actor="wang.fang",
    )
    await journal(
        db_pool,
        "journal_collector_actions",
        loan_id,
        at + timedelta(minutes=4),
        collector="wang.fang",
        action="call",
        outcome="no_answer",
        detail="rang twice",
    )
    for fate, minutes in (("made", 5), ("broken", 6)):
        await journal(
            db_pool,
            "journal_promises",
            loan_id,
            at + timedelta(minutes=minutes),
            promise_id="P-OLD-1",
            amount_minor=25_000,
            currency="CNY",
            due_date=date(2026, 1, 15),
            fate=fate,
            actor="wang.fang",
        )
    await journal(
        db_pool,
        "journal_payments",
        loan_id,
        at + timedelta(minutes=7),
        payment_id="PAY-1",
        amount_minor=12_345,
        currency="CNY",
        received_at=at + timedelta(minutes=7),
        source="bank_transfer",
        applied=True,
        reason=None,
    )
    await journal(
        db_pool,
        "journal_payments",
        loan_id,
        at + timedelta(minutes=8),
        payment_id="PAY-2",
        amount_minor=500,
        currency="CNY",
        received_at=at + timedelta(minutes=8),
        source="card",
        applied=False,
        reason="currency mismatch",
    )

    client = await make_client()
    await login(client, (await make_user("collector")).username)
    html = (await client.get(f"/loans/{loan_id}")).text

    payments = section(html, "payments")
    assert "CNY 123.45" in payments and "bank_transfer" in payments and "applied" in payments
    assert "CNY 5.00" in payments and "not applied" in payments and "currency mismatch" in payments

    promises = section(html, "promises")
    old = re.search(r'data-promise="P-OLD-1">(.*?)</tr>', promises, re.S)
    assert old and "CNY 250.00" in old.group(1) and "2026-01-15" in old.group(1)
    assert "broken" in old.group(1) and "made" in old.group(1) and "wang.fang" in old.group(1)

    timeline = section(html, "timeline")
    rows = re.findall(r'<tr class="timeline-(\w+)">(.*?)</tr>', timeline, re.S)
    kinds = [kind for kind, _ in rows]
    assert kinds == [
        "stage_transition",
        "contact_attempt",
        "deferral",
        "hold",
        "collector_action",
        "promise",
        "promise",
        "payment",
        "payment",
    ]
    text = {kind: body for kind, body in reversed(rows)}  # the first row of each kind
    assert "Stage change" in text["stage_transition"] and "Reminder → deep" in text["stage_transition"]
    assert "Contact attempt" in text["contact_attempt"] and "SMS" in text["contact_attempt"]
    assert "to the phone" in text["contact_attempt"]
    assert "Deferral" in text["deferral"] and "rule hours" in text["deferral"] and "until" in text["deferral"]
    assert "Hold" in text["hold"] and "Dispute" in text["hold"] and "raised" in text["hold"]
    assert "Collector action" in text["collector_action"] and "wang.fang" in text["collector_action"]
    assert "rang twice" in text["collector_action"]
    assert "Promise to pay" in text["promise"] and "Payment" in text["payment"]


async def test_the_dossier_lists_placements_and_letters_and_serves_the_pdf(
    make_client: MakeClient, make_user: MakeUser, running_loan: Loan, db_pool: asyncpg.Pool
) -> None:
    loan_id = running_loan.loan_id
    placed = datetime.now(UTC) - timedelta(days=40)
    await db_pool.execute(
        "INSERT INTO agency_placements (idempotency_key, loan_id, agency_id, segment, dpd, "
        "amount_overdue_minor, principal_outstanding_minor, currency, placed_at, expires_at, recalled_at, "
        "recall_reason, status) "
        "VALUES ($1, $2, 'east-recovery', 'standard', 20, 80000, 320000, 'CNY', $3, $4, $5, 'expired', "
        "'accepted')",
        f"{loan_id}:place:1",
        loan_id,
        placed,
        placed + timedelta(days=30),
        placed + timedelta(days=30),
    )
    document_id = await store_document(db_pool, loan_id)
    other_loan_document = await store_document(db_pool, f"OTHER-{uuid.uuid4().hex[:8]}")

    client = await make_client()
    await login(client, (await make_user("collector")).username)
    html = (await client.get(f"/loans/{loan_id}")).text

    placements = section(html, "placements")
    assert "East Recovery Partners" in placements and "expired" in placements
    assert placed.strftime("%Y-%m-%d") in placements or (placed + timedelta(hours=8)).strftime(
        "%Y-%m-%d"
    ) in (placements)
    link = f"/loans/{loan_id}/documents/{document_id}.pdf"
    assert f'href="{link}"' in section(html, "letters")

    pdf = await client.get(link)
    assert pdf.status_code == 200 and pdf.content == PDF
    assert (
        await db_pool.fetchval(
            "SELECT count(*) FROM read_audit WHERE action = 'document_download' AND loan_id = $1 "
            "AND document_id = $2",
            loan_id,
            document_id,
        )
        == 1
    )
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("attachment;")

    assert (await client.get(f"/loans/{loan_id}/documents/{other_loan_document}.pdf")).status_code == 404
    assert (await client.get(f"/loans/{loan_id}/documents/{uuid.uuid4()}.pdf")).status_code == 404
    assert (await client.get(f"/loans/{loan_id}/documents/not-a-uuid.pdf")).status_code == 404

    logged_out = await make_client()
    response = await logged_out.get(link)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_a_tampered_document_is_not_served(
    make_client: MakeClient, make_user: MakeUser, db_pool: asyncpg.Pool
) -> None:
    loan_id = f"DOS-{uuid.uuid4().hex[:8]}"
    document_id = await store_document(db_pool, loan_id)
    await db_pool.execute(
        "UPDATE legal_documents SET content = $2 WHERE id = $1::uuid", document_id, b"%PDF-x"
    )
    client = await make_client()
    await login(client, (await make_user("supervisor")).username)  # no loan: no pool of a collector's
    response = await client.get(f"/loans/{loan_id}/documents/{document_id}.pdf")
    assert response.status_code == 500 and response.headers["content-type"].startswith("text/html")


def contact_value(html: str, kind: str) -> str:
    found = re.search(rf'id="contact-{kind}">.*?<span class="contact-value[^"]*">([^<]*)</span>', html, re.S)
    assert found, kind
    return found.group(1)


async def test_a_collector_sees_contacts_masked_and_reveals_one_with_a_reason(
    make_client: MakeClient, make_user: MakeUser, running_loan: Loan, db_pool: asyncpg.Pool
) -> None:
    loan_id = running_loan.loan_id
    client = await make_client()
    user = await make_user("collector")
    await login(client, user.username)
    page = await client.get(f"/loans/{loan_id}")
    assert contact_value(page.text, "phone") == "+86 138****8000"
    assert contact_value(page.text, "email") == "l***@example.cn"
    assert contact_value(page.text, "postal") == "上海市浦东…"
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token and 'action="/loans/' + loan_id + '/reveal"' in page.text

    async def audit_rows(action: str) -> list[asyncpg.Record]:
        return await db_pool.fetch(
            "SELECT * FROM read_audit WHERE loan_id = $1 AND action = $2 ORDER BY id", loan_id, action
        )

    # No reason: an error next to the field, nothing shown, nothing audited.
    refused = await client.post(
        f"/loans/{loan_id}/reveal", data={"csrf_token": token.group(1), "reveal_field": "phone"}
    )
    assert refused.status_code == 422
    assert re.search(r'id="reveal_reason-error"[^>]*>Say why you need to see it', refused.text)
    assert "+8613800138000" not in refused.text and await audit_rows("reveal") == []

    revealed = await client.post(
        f"/loans/{loan_id}/reveal",
        data={
            "csrf_token": token.group(1),
            "reveal_field": "phone",
            "reveal_reason": "borrower  called back",
        },
    )
    assert revealed.status_code == 200
    assert contact_value(revealed.text, "phone") == "+8613800138000"
    assert contact_value(revealed.text, "email") == "l***@example.cn"  # only the one asked for
    rows = await audit_rows("reveal")
    assert [(r["username"], r["role"], r["field"], r["reason"]) for r in rows] == [
        (user.username, "collector", "phone", "borrower called back")
    ]
    assert rows[0]["client_addr"] == "127.0.0.1"
    # The next view is masked again.
    assert contact_value((await client.get(f"/loans/{loan_id}")).text, "phone") == "+86 138****8000"
    views = await audit_rows("dossier_view")
    assert len(views) == 2 and {r["username"] for r in views} == {user.username}
