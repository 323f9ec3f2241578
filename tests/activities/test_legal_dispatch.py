"""Registered mail of the lawyer's letter: S10 tracking references, idempotent dispatch, sandbox records."""

from __future__ import annotations

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import contracts
from activities.collection_activities import CollectionActivities
from activities.contracts import RegisteredMailRequest
from activities.legal import list_documents
from activities.registered_mail import (
    RegisteredMail,
    is_tracking_reference,
    s10_check_digit,
    tracking_reference,
)
from tests.activities.builders import key, letter_request


def mail_request(loan_id: str, document_id: str, **overrides: str) -> RegisteredMailRequest:
    fields = {
        "idempotency_key": key(loan_id, "lawyer_letter:registered_mail"),
        "loan_id": loan_id,
        "document_id": document_id,
        "locale": "zh-CN",
    }
    return RegisteredMailRequest.model_validate(fields | overrides)


@pytest.fixture
def mail(db_pool: asyncpg.Pool) -> RegisteredMail:
    return RegisteredMail(db_pool)


async def _letter(activities: CollectionActivities, loan_id: str) -> str:
    return (await activities.generate_lawyer_letter(letter_request(loan_id, locale="zh-CN"))).document_id


def test_s10_check_digit_matches_the_upu_example() -> None:
    # UPU S10: weights 8 6 4 2 3 5 9 7 -> 204; 11 - 204 mod 11 = 5.
    assert s10_check_digit("12345678") == 5
    assert is_tracking_reference("RR123456785CN")
    assert not is_tracking_reference("RR123456784CN")


def test_tracking_reference_depends_on_the_key_alone() -> None:
    first = tracking_reference("LN-1:2026-01-05:lawyer_letter")

    assert first == tracking_reference("LN-1:2026-01-05:lawyer_letter")
    assert first != tracking_reference("LN-2:2026-01-05:lawyer_letter")
    assert first.startswith("RR") and first.endswith("CN") and is_tracking_reference(first)


async def test_dispatch_records_one_row_with_a_tracking_reference(
    activities: CollectionActivities, mail: RegisteredMail, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    document_id = await _letter(activities, loan_id)
    request = mail_request(loan_id, document_id)

    receipt = await mail.dispatch_registered_mail(request)

    row = await db_pool.fetchrow("SELECT * FROM legal_dispatches WHERE loan_id = $1", loan_id)
    assert row is not None
    assert (row["tracking_reference"], str(row["document_id"]), row["carrier"], row["status"]) == (
        receipt.tracking_reference,
        document_id,
        "sandbox",
        "dispatched",
    )
    assert receipt.tracking_reference == tracking_reference(request.idempotency_key)
    assert receipt.duplicate is False


async def test_same_key_twice_dispatches_once_with_the_same_reference(
    activities: CollectionActivities, mail: RegisteredMail, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    document_id = await _letter(activities, loan_id)

    first = await mail.dispatch_registered_mail(mail_request(loan_id, document_id))
    second = await mail.dispatch_registered_mail(mail_request(loan_id, document_id))

    assert (second.tracking_reference, second.duplicate) == (first.tracking_reference, True)
    assert await db_pool.fetchval("SELECT count(*) FROM legal_dispatches WHERE loan_id = $1", loan_id) == 1


async def test_a_reference_taken_by_another_key_moves_to_the_keys_next_candidate(
    activities: CollectionActivities, mail: RegisteredMail, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    document_id = await _letter(activities, loan_id)
    request = mail_request(loan_id, document_id)
    await db_pool.execute(
        "INSERT INTO legal_dispatches (idempotency_key, loan_id, document_id, locale, carrier, "
        "tracking_reference) VALUES ($1, $2, $3::uuid, 'zh-CN', 'sandbox', $4)",
        f"{loan_id}:someone-else",
        loan_id,
        document_id,
        tracking_reference(request.idempotency_key),
    )

    receipt = await mail.dispatch_registered_mail(request)

    assert receipt.tracking_reference == tracking_reference(request.idempotency_key, candidate=1)
    assert (await mail.dispatch_registered_mail(request)).tracking_reference == receipt.tracking_reference


async def test_dispatch_of_another_loans_document_is_non_retryable(
    activities: CollectionActivities, mail: RegisteredMail, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    others = await _letter(activities, f"{loan_id}-other")

    for document_id in (others, "not-a-uuid"):
        with pytest.raises(ApplicationError) as error:
            await mail.dispatch_registered_mail(mail_request(loan_id, document_id))
        assert (error.value.type, error.value.non_retryable) == (contracts.UNKNOWN_DOCUMENT, True)
    assert await db_pool.fetchval("SELECT count(*) FROM legal_dispatches WHERE loan_id = $1", loan_id) == 0


async def test_a_key_reused_for_another_loan_is_a_conflict(
    activities: CollectionActivities, mail: RegisteredMail, loan_id: str
) -> None:
    request = mail_request(loan_id, await _letter(activities, loan_id))
    await mail.dispatch_registered_mail(request)
    other_loan = f"{loan_id}-other"
    other = request.model_copy(
        update={"loan_id": other_loan, "document_id": await _letter(activities, other_loan)}
    )

    with pytest.raises(ApplicationError) as error:
        await mail.dispatch_registered_mail(other)

    assert (error.value.type, error.value.non_retryable) == (contracts.IDEMPOTENCY_KEY_CONFLICT, True)


async def test_runs_as_a_registered_activity_and_shows_in_the_document_list(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    document_id = await _letter(activities, loan_id)
    dispatch = next(
        fn for fn in activities.all() if getattr(fn, "__name__", "") == "dispatch_registered_mail"
    )

    receipt = await ActivityEnvironment().run(dispatch, mail_request(loan_id, document_id))

    [document] = await list_documents(db_pool, loan_id)
    assert document.tracking_reference == receipt.tracking_reference
