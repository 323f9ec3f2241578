"""The inbound webhooks' JSON bodies. Unknown fields are ignored (providers add their own)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.loan import E164

EVENT_ID = r"^[A-Za-z0-9_.:\-]{1,200}$"
CODE = r"^[A-Za-z0-9_.\-]{1,64}$"

# Provider codes that mean the contact point will never work (an SMS gateway's unknown subscriber, an app
# without a device); any other failure is not held against the borrower's number or address.
PERMANENT_CODES = frozenset(
    {
        "unknown_subscriber",
        "invalid_number",
        "unknown_number",
        "number_not_mobile",
        "invalid_recipient",
        "deactivated",
        "no_device",
        "unregistered",
        "unknown_account",
        "no_such_user",
    }
)


class Inbound(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)

    event_id: str = Field(pattern=EVENT_ID, description="the provider's event id: a replay changes nothing")


class SmsReply(Inbound):
    sender: str = Field(alias="from", pattern=E164.pattern, description="the borrower's number, E.164")
    text: str = Field(max_length=1600)
    received_at: datetime | None = None


class Receipt(Inbound):
    message_id: str = Field(min_length=1, max_length=200, description="the provider's id of our message")
    status: Literal["delivered", "failed", "unknown"]
    code: str | None = Field(default=None, pattern=CODE, description="the provider's reason code")
    permanent: bool | None = Field(default=None, description="the provider says the failure is for good")
    at: datetime | None = None

    def is_permanent_failure(self) -> bool:
        if self.status != "failed":
            return False
        return bool(self.permanent) or (self.code is not None and self.code.lower() in PERMANENT_CODES)


class EmailEvent(Inbound):
    type: Literal["reply", "bounce", "delivered", "complaint"]
    message_id: str | None = Field(default=None, max_length=998, description="Message-ID of our mail")
    sender: str | None = Field(default=None, alias="from", max_length=254)
    subject: str | None = Field(default=None, max_length=998)
    text: str | None = Field(default=None, max_length=100_000)
    bounce_type: Literal["hard", "soft"] | None = None
    code: str | None = Field(default=None, pattern=CODE, description="e.g. the SMTP enhanced code 5.1.1")
    at: datetime | None = None

    def is_hard_bounce(self) -> bool:
        if self.type != "bounce":
            return False
        if self.bounce_type is not None:
            return self.bounce_type == "hard"
        # RFC 3463: 5.1.x (bad mailbox or domain) is permanent; 4.x.x and other 5.x.x may pass later.
        return self.code is not None and self.code.startswith("5.1.")
