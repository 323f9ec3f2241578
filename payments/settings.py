"""Settings of payments from the borrower page (README "Payments from the borrower page")."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class PaymentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERDUE_", extra="ignore")

    # The provider's API base URL (checkout sessions); unset: `make run` starts the sandbox provider.
    payment_provider_url: str | None = None
    payment_api_key: SecretStr | None = None
    # The secret the provider signs its webhooks with (HMAC-SHA256, payments/signature.py). Without it every
    # webhook is refused: an unauthenticated "paid" would be money the provider never confirmed.
    payment_webhook_secret: SecretStr | None = None
    payment_webhook_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    # The smallest payment the page takes, in minor units (a smaller arrears is payable in full).
    payment_minimum_minor: int = Field(default=100, ge=1)
    payment_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # The sandbox provider of `make run` (stack/sandbox/payments.py): its port, and where it sends webhooks.
    sandbox_payments_port: int = Field(default=8029, ge=0, le=65535)
    payment_webhook_url: str | None = None
