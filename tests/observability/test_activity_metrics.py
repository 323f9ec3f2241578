"""Placements, recalls, legal documents, registered mail and referrals are counted once per stored row: the
retry Temporal makes after a lost completion (same request, same key) counts nothing again."""

from __future__ import annotations

import uuid

import asyncpg

from activities.collection_activities import CollectionActivities
from activities.contracts import RegisteredMailRequest
from activities.registered_mail import RegisteredMail
from tests.activities.builders import (
    key,
    letter_request,
    placement_request,
    recall_request,
    referral_request,
)
from tests.observability.registry import delta, one, samples


async def test_each_activity_fact_is_counted_once_across_retries(own_db_pool: asyncpg.Pool) -> None:
    await own_db_pool.execute("DELETE FROM agencies")
    await own_db_pool.execute(
        "INSERT INTO agencies (id, name, capacity, segments, commission_bps) "
        "VALUES ('a', 'A', 10, '{}', 2000)"
    )
    activities = CollectionActivities(own_db_pool)
    mail = RegisteredMail(own_db_pool)
    loan_id = f"LN-{uuid.uuid4().hex[:12]}"
    before = samples()

    for _attempt in range(2):
        placement = await activities.place_with_agency(placement_request(loan_id))
        await activities.recall_from_agency(recall_request(loan_id, placement.placement_id))
        letter = await activities.generate_lawyer_letter(letter_request(loan_id))
        await mail.dispatch_registered_mail(
            RegisteredMailRequest(
                idempotency_key=key(loan_id, "lawyer_letter:mail"),
                loan_id=loan_id,
                document_id=letter.document_id,
                locale="en",
            )
        )
        await activities.refer_to_litigation(referral_request(loan_id, [letter.document_id]))

    assert delta(before, samples()) == {
        one("overdue_placements_total", currency="CNY"): 1,
        one("overdue_recalls_total", reason="paid"): 1,
        one("overdue_letters_total", document="lawyer_letter"): 1,
        one("overdue_registered_mail_total"): 1,
        one("overdue_litigation_referrals_total", currency="CNY"): 1,
    }
