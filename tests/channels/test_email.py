"""E-mail over real SMTP to the sandbox capture server."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities import contracts
from activities.channels import ChannelRouter, errors
from activities.channels.smtp import IDEMPOTENCY_HEADER, message_id_for
from activities.collection_activities import CollectionActivities
from activities.messaging import TemplateCatalogue
from stack.embedded import free_port
from stack.sandbox import MailCapture
from tests.activities.builders import VARIABLES
from tests.channels.conftest import BAD_EMAIL, EMAIL, email_request, outbox_row, smtp_adapter

CATALOGUE = TemplateCatalogue.load()


async def test_mail_arrives_with_subject_body_and_idempotency_headers(
    activities: CollectionActivities, mailbox: MailCapture, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    request = email_request(loan_id)

    receipt = await activities.send_message(request)

    [mail] = mailbox.messages()
    headers = mail["headers"]
    assert headers["To"] == EMAIL
    assert headers["From"] == "Overdue Collections <collections@lender.test>"
    assert headers["Subject"] and "{" not in headers["Subject"]
    assert headers[IDEMPOTENCY_HEADER] == request.idempotency_key
    assert headers["Message-ID"] == message_id_for(request.idempotency_key, "lender.test")
    assert VARIABLES["amount"] in mail["text"]
    assert mail["has_html"] is True
    row = await outbox_row(db_pool, request.idempotency_key)
    assert (receipt.status, row["status"], row["provider_id"]) == ("sent", "sent", headers["Message-ID"])


async def test_same_key_twice_sends_one_mail(
    activities: CollectionActivities, mailbox: MailCapture, loan_id: str
) -> None:
    first = await activities.send_message(email_request(loan_id))
    second = await activities.send_message(email_request(loan_id))

    assert len(mailbox.messages()) == 1
    assert (second.duplicate, second.status, second.message_id) == (True, "sent", first.message_id)


async def test_unknown_mailbox_550_is_permanent_and_marks_the_message_failed(
    activities: CollectionActivities, mailbox: MailCapture, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    request = email_request(loan_id, recipient=BAD_EMAIL)

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(request)

    assert (error.value.type, error.value.non_retryable) == (contracts.CONTACT_POINT_INVALID, True)
    assert BAD_EMAIL not in str(error.value) and error.value.__cause__ is None  # no PII in the history
    assert "550" in str(error.value)
    assert (await outbox_row(db_pool, request.idempotency_key))["status"] == "failed"
    assert mailbox.messages() == []


async def test_4xx_is_retryable_then_the_retry_delivers_once(
    activities: CollectionActivities, mailbox: MailCapture, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    request = email_request(loan_id)
    mailbox.fail_next(1)

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(request)
    assert (error.value.type, error.value.non_retryable) == (errors.PROVIDER_UNAVAILABLE, False)
    assert (await outbox_row(db_pool, request.idempotency_key))["status"] == "queued"

    retried = await activities.send_message(request)

    assert (retried.status, retried.duplicate) == ("sent", True)
    assert len(mailbox.messages()) == 1


async def test_smtp_login_with_the_right_credentials(
    tmp_path: Path, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    capture = MailCapture(tmp_path / "authmail", credentials=("overdue", "s3cret"))
    await capture.start()
    try:
        good = smtp_adapter(capture, username="overdue", password="s3cret")
        bad = smtp_adapter(capture, username="overdue", password="wrong")
        await CollectionActivities(db_pool, channel=ChannelRouter({"email": good})).send_message(
            email_request(loan_id)
        )
        with pytest.raises(ApplicationError) as error:
            await bad.deliver(CATALOGUE.render(email_request(loan_id, step_key="other")))
    finally:
        await capture.stop()

    assert len(capture.messages()) == 1
    assert (error.value.type, error.value.non_retryable) == (errors.PROVIDER_MISCONFIGURED, False)


async def test_server_down_is_retryable(db_pool: asyncpg.Pool, loan_id: str, mailbox: MailCapture) -> None:
    adapter = smtp_adapter(mailbox, port=free_port())  # nobody listens there
    activities = CollectionActivities(db_pool, channel=ChannelRouter({"email": adapter}))

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(email_request(loan_id))

    assert (error.value.type, error.value.non_retryable) == (errors.PROVIDER_UNAVAILABLE, False)
