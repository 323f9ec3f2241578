"""Choosing the provider per channel from the settings; channels without one stay queued in the outbox."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from activities.channels import ChannelRouter, ChannelSettingsError, build_router
from activities.collection_activities import CollectionActivities
from activities.messaging import TemplateCatalogue
from stack.sandbox import MailCapture, SmsGatewaySandbox
from stack.settings import Settings
from tests.channels.conftest import email_request, outbox_row, push_request, sms_request, smtp_adapter

CATALOGUE = TemplateCatalogue.load()


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings.model_validate({"state_dir": tmp_path, **values})


async def test_unconfigured_channels_stay_queued(
    mailbox: MailCapture, sms_gateway: SmsGatewaySandbox, db_pool: asyncpg.Pool, loan_id: str
) -> None:
    router = ChannelRouter({"email": smtp_adapter(mailbox)})
    activities = CollectionActivities(db_pool, channel=router)

    email = await activities.send_message(email_request(loan_id))
    sms = await activities.send_message(sms_request(loan_id))
    push = await activities.send_message(push_request(loan_id))

    assert (email.status, sms.status, push.status) == ("sent", "queued", "queued")
    assert len(mailbox.messages()) == 1
    assert sms_gateway.requests == 0
    row = await outbox_row(db_pool, sms_request(loan_id).idempotency_key)
    assert (row["status"], row["provider_id"]) == ("queued", None)


def test_no_provider_settings_build_a_router_that_delivers_nothing(tmp_path: Path) -> None:
    assert build_router(_settings(tmp_path)).channels == []


async def test_settings_choose_the_adapter_per_channel(tmp_path: Path) -> None:
    router = build_router(
        _settings(
            tmp_path,
            smtp_host="smtp.lender.test",
            sms_gateway_url="https://sms.lender.test/v1/messages",
            sms_api_key="k",
            push_webhook_url="https://push.lender.test/hook",
            push_webhook_secret="s",
        )
    )
    try:
        assert router.channels == ["sms", "email", "push"]
    finally:
        await router.aclose()


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"push_webhook_url": "https://push.lender.test/hook"}, "OVERDUE_PUSH_WEBHOOK_SECRET"),
        ({"sms_gateway_url": "sms.lender.test/messages"}, "http(s)://"),
        ({"smtp_host": "smtp.lender.test", "smtp_username": "u"}, "username and password"),
        ({"smtp_host": "smtp.lender.test", "smtp_from": "not an address"}, "from address"),
    ],
)
def test_incomplete_settings_are_refused_with_a_clear_message(
    tmp_path: Path, values: dict[str, object], names: str
) -> None:
    with pytest.raises(ChannelSettingsError, match="channel settings") as error:
        build_router(_settings(tmp_path, **values))

    assert names in str(error.value)


def test_smtp_tls_mode_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="smtp_tls"):
        _settings(tmp_path, smtp_tls="ssl")


async def test_router_refuses_to_deliver_a_channel_it_has_no_provider_for(loan_id: str) -> None:
    with pytest.raises(LookupError):
        await ChannelRouter().deliver(CATALOGUE.render(sms_request(loan_id)))


def test_router_refuses_unknown_channels() -> None:
    with pytest.raises(ValueError, match="fax"):
        ChannelRouter({"fax": object()})  # type: ignore[dict-item]
