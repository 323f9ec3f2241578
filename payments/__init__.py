"""Payments from the borrower page through a payment provider (hosted checkout page + signed webhook).

`PaymentService.start_checkout` gives the borrower page the provider's hosted page for an amount within the
bounds; `payments.webhook.router` receives the provider's signed events and turns a confirmed payment into the
loan's `payment` signal, once. README "Payments from the borrower page".
"""

from payments.provider import Checkout, ProviderClient, ProviderError
from payments.service import PaymentService, WebhookOutcome, WebhookRefused, payment_id
from payments.settings import PaymentSettings

__all__ = [
    "Checkout",
    "PaymentService",
    "PaymentSettings",
    "ProviderClient",
    "ProviderError",
    "WebhookOutcome",
    "WebhookRefused",
    "payment_id",
]
