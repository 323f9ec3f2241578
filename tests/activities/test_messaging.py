from __future__ import annotations

import asyncpg
import pytest
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import contracts
from activities.collection_activities import CollectionActivities
from activities.messaging import TEMPLATE_VARIABLES, RenderedMessage, TemplateCatalogue
from tests.activities.builders import VARIABLES, key, message_request

CATALOGUE = TemplateCatalogue.load()


class RecordingChannel:
    """A provider that records what it was asked to deliver."""

    def __init__(self) -> None:
        self.delivered: list[RenderedMessage] = []

    async def deliver(self, message: RenderedMessage) -> str:
        self.delivered.append(message)
        return f"provider-{len(self.delivered)}"


async def _rows(pool: asyncpg.Pool, loan_id: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM messages WHERE loan_id = $1", loan_id)


async def test_send_message_stores_one_queued_message(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    receipt = await activities.send_message(message_request(loan_id))

    rows = await _rows(db_pool, loan_id)
    assert [(str(r["id"]), r["status"], r["channel"]) for r in rows] == [
        (receipt.message_id, "queued", "sms")
    ]
    assert receipt.status == "queued"
    assert receipt.duplicate is False


async def test_same_key_twice_stores_one_message_and_reports_duplicate(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    first = await activities.send_message(message_request(loan_id))
    second = await activities.send_message(message_request(loan_id))

    assert len(await _rows(db_pool, loan_id)) == 1
    assert second.duplicate is True
    assert second.message_id == first.message_id


# What the workflow sends (workflows/step_requests.py): raw amounts and dates, formatted by the activity.
WORKFLOW_VARIABLES = {
    "borrower_name": "张伟",
    "loan_id": "LN-1",
    "amount": "CNY 1,234.50",
    "amount_minor": "123450",
    "currency": "CNY",
    "dpd": "3",
    "overdue_since": "2026-01-05",
    "lender": "Overdue Demo Consumer Finance",
}


async def test_stored_body_is_the_rendered_template(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    await activities.send_message(message_request(loan_id, locale="zh-CN", variables=WORKFLOW_VARIABLES))

    [row] = await _rows(db_pool, loan_id)
    assert row["body"].startswith("【Overdue Demo Consumer Finance】尊敬的张伟，您好！温馨提示")
    assert "¥1,234.50" in row["body"]  # from amount_minor + currency, for the zh-CN borrower
    assert "CNY 1,234.50" not in row["body"]
    assert "2026年1月5日" in row["body"]


async def test_an_already_formatted_amount_from_an_older_workflow_is_used_as_sent(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    await activities.send_message(message_request(loan_id, locale="zh-CN"))

    [row] = await _rows(db_pool, loan_id)
    assert "CNY 1,234.50" in row["body"]


async def test_workflow_variables_without_due_date_or_pay_url_render_with_fallbacks(
    db_pool: asyncpg.Pool, loan_id: str
) -> None:
    activities = CollectionActivities(db_pool, pay_url="https://pay.lender.test/{loan_id}")
    variables = {k: v for k, v in VARIABLES.items() if k not in ("due_date", "pay_url")}
    variables["overdue_since"] = "2026-01-05"

    await activities.send_message(message_request(loan_id, variables=variables))

    [row] = await _rows(db_pool, loan_id)
    assert "was due on Jan 5, 2026" in row["body"]
    assert f"https://pay.lender.test/{loan_id}" in row["body"]


async def test_template_version_is_stored_and_returned(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    first = await activities.send_message(message_request(loan_id))
    again = await activities.send_message(message_request(loan_id))

    [row] = await _rows(db_pool, loan_id)
    expected = CATALOGUE.templates.version("reminder_polite", "en", "sms")
    assert row["template_version"] == expected
    assert (first.template_version, again.template_version) == (expected, expected)


async def test_sent_message_reports_its_template_version(db_pool: asyncpg.Pool, loan_id: str) -> None:
    channel = RecordingChannel()
    activities = CollectionActivities(db_pool, channel=channel)

    receipt = await activities.send_message(message_request(loan_id))

    [row] = await _rows(db_pool, loan_id)
    assert receipt.status == "sent"
    assert receipt.template_version == row["template_version"] == channel.delivered[0].template_version


async def test_us_sms_is_stored_with_the_opt_out_line(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    variables = WORKFLOW_VARIABLES | {"borrower_name": "Mary Smith", "currency": "USD", "jurisdiction": "us"}

    await activities.send_message(message_request(loan_id, variables=variables))

    [row] = await _rows(db_pool, loan_id)
    assert "$1,234.50" in row["body"]
    assert row["body"].endswith("Reply STOP to opt out.")


async def test_unknown_jurisdiction_is_an_invalid_request(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    variables = WORKFLOW_VARIABLES | {"jurisdiction": "usa"}

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(message_request(loan_id, variables=variables))

    assert (error.value.type, error.value.non_retryable) == (contracts.INVALID_REQUEST, True)
    assert "jurisdiction" in str(error.value)
    assert await _rows(db_pool, loan_id) == []


async def test_channel_adapter_delivers_once_and_marks_sent(db_pool: asyncpg.Pool, loan_id: str) -> None:
    channel = RecordingChannel()
    activities = CollectionActivities(db_pool, channel=channel)

    first = await activities.send_message(message_request(loan_id))
    second = await activities.send_message(message_request(loan_id))

    assert len(channel.delivered) == 1
    assert channel.delivered[0].idempotency_key == key(loan_id, "sms_reminder")
    assert (first.status, second.status, second.duplicate) == ("sent", "sent", True)
    [row] = await _rows(db_pool, loan_id)
    assert (row["status"], row["provider_id"]) == ("sent", "provider-1")


async def test_message_the_provider_refuses_is_marked_failed(db_pool: asyncpg.Pool, loan_id: str) -> None:
    class RefusingChannel:
        async def deliver(self, message: RenderedMessage) -> str:
            raise ApplicationError(
                "number not in service", type=contracts.CONTACT_POINT_INVALID, non_retryable=True
            )

    activities = CollectionActivities(db_pool, channel=RefusingChannel())

    with pytest.raises(ApplicationError):
        await activities.send_message(message_request(loan_id))

    [row] = await _rows(db_pool, loan_id)
    assert row["status"] == "failed"


async def test_unknown_template_is_non_retryable(activities: CollectionActivities, loan_id: str) -> None:
    with pytest.raises(ApplicationError) as error:
        await ActivityEnvironment().run(activities.send_message, message_request(loan_id, template="threat"))

    assert error.value.type == contracts.UNKNOWN_TEMPLATE
    assert error.value.non_retryable is True


async def test_missing_variable_is_non_retryable(activities: CollectionActivities, loan_id: str) -> None:
    variables = {k: v for k, v in VARIABLES.items() if k != "borrower_name"}

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(message_request(loan_id, variables=variables))

    assert (error.value.type, error.value.non_retryable) == (contracts.TEMPLATE_VARIABLE_MISSING, True)
    assert "borrower_name" in str(error.value)


async def test_missing_amount_names_the_variables_that_supply_it(
    activities: CollectionActivities, loan_id: str
) -> None:
    variables = {k: v for k, v in WORKFLOW_VARIABLES.items() if k not in ("amount", "amount_minor")}

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(message_request(loan_id, variables=variables))

    assert (error.value.type, error.value.non_retryable) == (contracts.TEMPLATE_VARIABLE_MISSING, True)
    assert "amount_minor + currency" in str(error.value)


async def test_sms_to_an_invalid_phone_is_contact_point_invalid(
    activities: CollectionActivities, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    with pytest.raises(ApplicationError) as error:
        await activities.send_message(message_request(loan_id, recipient="13800138000"))

    assert (error.value.type, error.value.non_retryable) == (contracts.CONTACT_POINT_INVALID, True)
    assert "13800138000" not in str(error.value)
    assert await _rows(db_pool, loan_id) == []


async def test_same_key_for_another_loan_is_a_conflict(
    activities: CollectionActivities, loan_id: str
) -> None:
    await activities.send_message(message_request(loan_id))

    with pytest.raises(ApplicationError) as error:
        await activities.send_message(
            message_request("LN-other", idempotency_key=key(loan_id, "sms_reminder"))
        )

    assert (error.value.type, error.value.non_retryable) == (contracts.IDEMPOTENCY_KEY_CONFLICT, True)


async def test_log_line_carries_loan_id_but_no_contact_details(
    activities: CollectionActivities, loan_id: str
) -> None:
    with capture_logs() as logs:
        await activities.send_message(message_request(loan_id))

    [line] = logs
    assert line["loan_id"] == loan_id
    text = repr(line)
    assert "+8613800138000" not in text
    assert VARIABLES["borrower_name"] not in text


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("template", ["reminder_polite", "statement", "second_reminder", "broken_promise"])
@pytest.mark.parametrize("channel", ["sms", "email", "push"])
def test_every_template_renders_with_the_standard_variables(template: str, locale: str, channel: str) -> None:
    recipient = {"sms": "+8613800138000", "email": "li.na@example.com", "push": "LN-1"}[channel]
    request = message_request("LN-1", template=template, locale=locale, channel=channel, recipient=recipient)

    rendered = CATALOGUE.render(request)

    assert VARIABLES["amount"] in rendered.body
    assert "{" not in rendered.body
    assert (rendered.subject is None) == (channel == "sms")
    assert rendered.template_version == CATALOGUE.templates.version(template, locale, channel)


def test_catalogue_uses_only_the_documented_variables() -> None:
    assert CATALOGUE.variables() == set(TEMPLATE_VARIABLES)
