"""The inbound webhooks on a real PostgreSQL: replies opt out once, receipts land on the outbox row, a
permanent failure closes the contact point, and forged, replayed or unknown requests change nothing."""

from __future__ import annotations

import time
import uuid

from inbound.auth import API_KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.inbound.conftest import PHONE, PUSH_KEY, SECRET, Inbound, journal_jurisdiction

ACCEPTED = {"status": "accepted"}


def _loan() -> str:
    return f"L-{uuid.uuid4().hex[:8]}"


def _event() -> str:
    return f"evt-{uuid.uuid4().hex}"


async def test_stop_reply_opts_the_number_out_of_sms_once_with_one_us_confirmation(inbound: Inbound) -> None:
    loan = _loan()
    await inbound.message(loan, "sms", PHONE)
    await journal_jurisdiction(inbound.pool, loan, "us")
    reply = {"event_id": _event(), "from": PHONE, "text": " Stop. "}

    assert await inbound.post("/inbound/sms/replies", reply) == (200, ACCEPTED)
    assert inbound.desk.opted_out == {loan: {"sms"}}
    [confirmation] = inbound.sms.sent
    assert confirmation.recipient == PHONE and "unsubscribed" in confirmation.body
    outbox = await inbound.pool.fetchrow(
        "SELECT status, step_key FROM messages WHERE idempotency_key = $1", confirmation.idempotency_key
    )
    assert outbox is not None and dict(outbox) == {
        "status": "sent",
        "step_key": "inbound:opt_out_confirmation",
    }

    # The provider delivers the same webhook again: same answer, the workflow is not asked again.
    before = await inbound.table()
    assert await inbound.post("/inbound/sms/replies", reply) == (200, ACCEPTED)
    assert inbound.desk.calls == [(loan, "sms")] and len(inbound.sms.sent) == 1
    assert await inbound.table() == before

    # A second STOP (a new event): the workflow answers "already"; no second confirmation.
    again = {"event_id": _event(), "from": PHONE, "text": "STOP"}
    assert await inbound.post("/inbound/sms/replies", again) == (200, ACCEPTED)
    assert len(inbound.sms.sent) == 1
    outcome = await inbound.pool.fetchval(
        "SELECT outcome FROM inbound_events WHERE event_id = $1", again["event_id"]
    )
    assert outcome == "already_opted_out"


async def test_chinese_and_full_width_stop_words_opt_out_without_confirmation_in_cn(inbound: Inbound) -> None:
    for text in ("退订", "ＴＤ", " t ", "取消", "UNSUBSCRIBE"):
        loan, phone = _loan(), f"+86138{uuid.uuid4().int % 10**8:08d}"
        await inbound.message(loan, "sms", phone)
        await journal_jurisdiction(inbound.pool, loan, "cn")
        assert await inbound.post(
            "/inbound/sms/replies", {"event_id": _event(), "from": phone, "text": text}
        ) == (200, ACCEPTED)
        assert inbound.desk.opted_out[loan] == {"sms"}, text
    assert inbound.sms.sent == []  # no confirmation required in China


async def test_help_reply_answers_with_the_help_text_and_opts_nothing_out(inbound: Inbound) -> None:
    loan = _loan()
    await inbound.message(loan, "sms", PHONE)
    assert await inbound.post(
        "/inbound/sms/replies", {"event_id": _event(), "from": PHONE, "text": "help"}
    ) == (200, ACCEPTED)
    [answer] = inbound.sms.sent
    assert "Reply STOP" in answer.body and answer.recipient == PHONE
    assert inbound.desk.calls == []


async def test_ordinary_sentence_is_not_an_opt_out(inbound: Inbound) -> None:
    loan = _loan()
    await inbound.message(loan, "sms", PHONE)
    text = "I will pay on Friday, please don't stop the plan"
    assert await inbound.post(
        "/inbound/sms/replies", {"event_id": _event(), "from": PHONE, "text": text}
    ) == (200, ACCEPTED)
    assert inbound.desk.calls == [] and inbound.sms.sent == []


async def test_unknown_number_gets_the_same_answer_and_nothing_is_sent(inbound: Inbound) -> None:
    status = await inbound.post(
        "/inbound/sms/replies", {"event_id": _event(), "from": "+12125550199", "text": "STOP"}
    )
    help_status = await inbound.post(
        "/inbound/sms/replies", {"event_id": _event(), "from": "+12125550199", "text": "HELP"}
    )
    assert status == help_status == (200, ACCEPTED)
    assert inbound.desk.calls == [] and inbound.sms.sent == []


async def test_failed_receipt_marks_the_number_unreachable(inbound: Inbound) -> None:
    loan = _loan()
    message = await inbound.message(loan, "sms", PHONE, provider_id="sms_abc")
    receipt = {
        "event_id": _event(),
        "message_id": "sms_abc",
        "status": "failed",
        "code": "unknown_subscriber",
    }

    assert await inbound.post("/inbound/sms/receipts", receipt) == (200, ACCEPTED)
    row = await inbound.pool.fetchrow(
        "SELECT delivery_status, delivery_reason, delivery_at FROM messages WHERE id = $1::uuid", message
    )
    assert (
        row is not None
        and row["delivery_status"] == "failed"
        and row["delivery_reason"] == "unknown_subscriber"
    )
    assert row["delivery_at"] is not None
    points = await inbound.pool.fetch(
        "SELECT loan_id, channel, address, reason FROM unreachable_contact_points"
    )
    assert [dict(p) for p in points] == [
        {"loan_id": loan, "channel": "sms", "address": PHONE, "reason": "unknown_subscriber"}
    ]
    # The loan's workflow is told once, and the row records that it knows.
    assert inbound.desk.unreachable_told == [(loan, "sms", PHONE, "unknown_subscriber")]
    assert await inbound.pool.fetchval("SELECT told_at IS NOT NULL FROM unreachable_contact_points")

    before = await inbound.table()  # a replay changes nothing
    assert await inbound.post("/inbound/sms/receipts", receipt) == (200, ACCEPTED)
    assert await inbound.table() == before
    assert len(inbound.desk.unreachable_told) == 1


async def test_a_workflow_not_told_is_told_at_the_next_permanent_failure(inbound: Inbound) -> None:
    loan = _loan()
    await inbound.message(loan, "sms", PHONE, provider_id="sms_one")
    await inbound.message(loan, "sms", PHONE, provider_id="sms_two")
    inbound.desk.down = True
    first = {"event_id": _event(), "message_id": "sms_one", "status": "failed", "code": "unknown_subscriber"}
    assert await inbound.post("/inbound/sms/receipts", first) == (200, ACCEPTED)
    assert await inbound.pool.fetchval("SELECT told_at IS NULL FROM unreachable_contact_points")

    inbound.desk.down = False
    second = {"event_id": _event(), "message_id": "sms_two", "status": "failed", "code": "unknown_subscriber"}
    assert await inbound.post("/inbound/sms/receipts", second) == (200, ACCEPTED)
    assert [told[0] for told in inbound.desk.unreachable_told] == [loan, loan]
    assert await inbound.pool.fetchval("SELECT told_at IS NOT NULL FROM unreachable_contact_points")


async def test_delivered_and_transient_failures_keep_the_number(inbound: Inbound) -> None:
    loan = _loan()
    await inbound.message(loan, "sms", PHONE, provider_id="sms_ok")
    await inbound.message(loan, "sms", PHONE, provider_id="sms_busy")
    for provider_id, status, code in (("sms_ok", "delivered", None), ("sms_busy", "failed", "network_busy")):
        receipt = {"event_id": _event(), "message_id": provider_id, "status": status, "code": code}
        assert await inbound.post("/inbound/sms/receipts", receipt) == (200, ACCEPTED)
    rows = await inbound.pool.fetch(
        "SELECT provider_id, delivery_status FROM messages WHERE loan_id = $1 ORDER BY provider_id", loan
    )
    assert [tuple(r) for r in rows] == [("sms_busy", "failed"), ("sms_ok", "delivered")]
    assert await inbound.pool.fetchval("SELECT count(*) FROM unreachable_contact_points") == 0


async def test_forged_webhooks_change_nothing(inbound: Inbound) -> None:
    loan = _loan()
    await inbound.message(loan, "sms", PHONE, provider_id="sms_forged")
    receipt = {"event_id": _event(), "message_id": "sms_forged", "status": "failed", "code": "invalid_number"}
    reply = {"event_id": _event(), "from": PHONE, "text": "STOP"}
    before = await inbound.table()

    wrong_secret = await inbound.post("/inbound/sms/receipts", receipt, secret="not-the-secret")
    unsigned = await inbound.post("/inbound/sms/replies", reply, secret=None)
    stale = int(time.time()) - 3600  # a signature captured an hour ago
    body = b'{"event_id": "evt-old", "from": "+12125550142", "text": "STOP"}'
    response = await inbound.client.post(
        "/inbound/sms/replies",
        data=body,
        headers={TIMESTAMP_HEADER: str(stale), SIGNATURE_HEADER: sign(SECRET, stale, body)},
    )
    other_provider = await inbound.post("/inbound/push/receipts", receipt)  # push takes its key only

    assert wrong_secret == unsigned == other_provider == (401, {"error": "unauthorized"})
    assert response.status == 401
    assert await inbound.table() == before
    assert inbound.desk.calls == [] and inbound.sms.sent == []


async def test_push_receipt_with_the_api_key_closes_the_app_account(inbound: Inbound) -> None:
    loan = _loan()
    await inbound.message(loan, "push", loan, provider_id="push_1")
    receipt = {"event_id": _event(), "message_id": "push_1", "status": "failed", "code": "no_device"}
    assert await inbound.post(
        "/inbound/push/receipts", receipt, secret=None, **{API_KEY_HEADER: PUSH_KEY}
    ) == (200, ACCEPTED)
    assert (
        await inbound.pool.fetchval("SELECT channel FROM unreachable_contact_points WHERE loan_id = $1", loan)
        == "push"
    )


async def test_email_hard_bounce_closes_the_address_and_unsubscribe_reply_opts_out(inbound: Inbound) -> None:
    loan = _loan()
    await inbound.message(loan, "email", "li.na@example.com", provider_id="<abc.overdue@example.com>")
    bounce = {
        "event_id": _event(),
        "type": "bounce",
        "message_id": "<abc.overdue@example.com>",
        "code": "5.1.1",
    }
    soft = {**bounce, "event_id": _event(), "code": "4.2.2"}
    assert await inbound.post("/inbound/email/events", soft) == (200, ACCEPTED)
    assert await inbound.pool.fetchval("SELECT count(*) FROM unreachable_contact_points") == 0
    assert await inbound.post("/inbound/email/events", bounce) == (200, ACCEPTED)
    assert (
        await inbound.pool.fetchval("SELECT address FROM unreachable_contact_points WHERE loan_id = $1", loan)
        == "li.na@example.com"
    )

    reply = {
        "event_id": _event(),
        "type": "reply",
        "from": "Li.Na@example.com",
        "subject": "Re: Your payment is overdue",
        "text": "Unsubscribe\n\n> On Monday you wrote: ...",
    }
    assert await inbound.post("/inbound/email/events", reply) == (200, ACCEPTED)
    assert inbound.desk.opted_out == {loan: {"email"}}


async def test_bad_body_names_the_field_and_changes_nothing(inbound: Inbound) -> None:
    before = await inbound.table()
    status, answer = await inbound.post(
        "/inbound/sms/receipts", {"event_id": _event(), "message_id": "x", "status": "bounced"}
    )
    assert status == 400 and answer["error"] == "invalid_request"
    assert [p["field"] for p in answer["problems"]] == ["status"]
    status, answer = await inbound.post(
        "/inbound/sms/replies", {"event_id": _event(), "from": "12", "text": "x"}
    )
    assert status == 400 and [p["field"] for p in answer["problems"]] == ["from"]
    assert "12" not in str(answer)  # the value received is never echoed
    assert await inbound.table() == before


async def test_redacting_the_message_removes_the_unreachable_address(inbound: Inbound) -> None:
    loan = _loan()
    message = await inbound.message(loan, "sms", PHONE, provider_id="sms_gone")
    receipt = {"event_id": _event(), "message_id": "sms_gone", "status": "failed", "code": "invalid_number"}
    assert await inbound.post("/inbound/sms/receipts", receipt) == (200, ACCEPTED)
    assert await inbound.pool.fetchval("SELECT count(*) FROM unreachable_contact_points") == 1
    # What privacy/erasure.py does to a message past retention, or to every message of an erased loan.
    await inbound.pool.execute(
        "UPDATE messages SET recipient = '', body = '', redacted_at = now() WHERE id = $1::uuid", message
    )
    assert await inbound.pool.fetchval("SELECT count(*) FROM unreachable_contact_points") == 0


async def test_one_number_on_two_loans_opts_both_out_with_one_confirmation(inbound: Inbound) -> None:
    first, second = _loan(), _loan()
    for loan in (first, second):
        await inbound.message(loan, "sms", PHONE)
        await journal_jurisdiction(inbound.pool, loan, "us")
    reply = {"event_id": _event(), "from": PHONE, "text": "STOP"}
    assert await inbound.post("/inbound/sms/replies", reply) == (200, ACCEPTED)
    assert inbound.desk.opted_out == {first: {"sms"}, second: {"sms"}}
    assert len(inbound.sms.sent) == 1


async def test_an_opt_out_the_workflow_cannot_take_now_is_retried_by_the_provider(inbound: Inbound) -> None:
    loan = _loan()
    await inbound.message(loan, "sms", PHONE)
    reply = {"event_id": _event(), "from": PHONE, "text": "退订"}
    inbound.desk.down = True
    status, answer = await inbound.post("/inbound/sms/replies", reply)
    assert (status, answer) == (503, {"error": "retry_later"}) and inbound.desk.opted_out == {}
    inbound.desk.down = False
    assert await inbound.post("/inbound/sms/replies", reply) == (200, ACCEPTED)  # the provider's retry
    assert inbound.desk.opted_out == {loan: {"sms"}}
    assert await inbound.post("/inbound/sms/replies", reply) == (200, ACCEPTED)
    assert inbound.desk.calls == [(loan, "sms"), (loan, "sms")]  # refused once, applied once, then no more
