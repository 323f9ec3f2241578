"""Valid activity requests for the tests; each test overrides only the fields it is about."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from activities.contracts import (
    CollectorTaskRequest,
    LawyerLetterRequest,
    LitigationReferralRequest,
    MessageRequest,
    PlacementRequest,
    RecallRequest,
)

OVERDUE_SINCE = date(2026, 1, 5)

VARIABLES = {
    "borrower_name": "Li Na",
    "amount": "CNY 1,234.50",
    "due_date": "2026-01-05",
    "dpd": "3",
    "lender": "Overdue Demo Consumer Finance",
    "pay_url": "https://pay.example.com/LN-1",
}


def key(loan_id: str, step_key: str) -> str:
    return f"{loan_id}:{OVERDUE_SINCE}:{step_key}"


def message_request(loan_id: str, **overrides: Any) -> MessageRequest:
    fields: dict[str, Any] = {
        "idempotency_key": key(loan_id, overrides.get("step_key", "sms_reminder")),
        "loan_id": loan_id,
        "step_key": "sms_reminder",
        "channel": "sms",
        "template": "reminder_polite",
        "locale": "en",
        "recipient": "+8613800138000",
        "variables": VARIABLES,
    }
    return MessageRequest(**(fields | overrides))


def task_request(loan_id: str, **overrides: Any) -> CollectorTaskRequest:
    fields: dict[str, Any] = {
        "idempotency_key": key(loan_id, "collector_call"),
        "loan_id": loan_id,
        "step_key": "collector_call",
        "kind": "call",
        "due_at": datetime(2026, 1, 20, 1, 0, tzinfo=UTC),
        "priority": 500,
    }
    return CollectorTaskRequest(**(fields | overrides))


def placement_request(loan_id: str, **overrides: Any) -> PlacementRequest:
    fields: dict[str, Any] = {
        "idempotency_key": key(loan_id, "agency_placement"),
        "loan_id": loan_id,
        "currency": "CNY",
        "amount_overdue_minor": 500_000,
        "principal_outstanding_minor": 2_000_000,
        "segment": "standard",
        "dpd": 45,
        "period_days": 60,
        "placed_at": datetime(2026, 2, 19, 1, 0, tzinfo=UTC),
    }
    return PlacementRequest(**(fields | overrides))


def recall_request(loan_id: str, placement_id: str, **overrides: Any) -> RecallRequest:
    fields: dict[str, Any] = {
        "idempotency_key": key(loan_id, "agency_recall:paid"),
        "loan_id": loan_id,
        "placement_id": placement_id,
        "reason": "paid",
    }
    return RecallRequest(**(fields | overrides))


def letter_request(loan_id: str, **overrides: Any) -> LawyerLetterRequest:
    fields: dict[str, Any] = {
        "idempotency_key": key(loan_id, "lawyer_letter"),
        "loan_id": loan_id,
        "locale": "en",
        "lender": "Overdue Demo Consumer Finance",
        "borrower_name": "Li Na",
        "currency": "CNY",
        "amount_overdue_minor": 1_234_567,
        "principal_outstanding_minor": 9_876_543,
        "overdue_since": OVERDUE_SINCE,
        "dpd": 90,
        "issued_on": date(2026, 4, 5),
        "respond_by": date(2026, 4, 20),
    }
    return LawyerLetterRequest(**(fields | overrides))


def referral_request(loan_id: str, document_ids: list[str], **overrides: Any) -> LitigationReferralRequest:
    fields: dict[str, Any] = {
        "idempotency_key": key(loan_id, "litigation_referral"),
        "loan_id": loan_id,
        "currency": "CNY",
        "amount_overdue_minor": 1_234_567,
        "principal_outstanding_minor": 9_876_543,
        "dpd": 105,
        "document_ids": document_ids,
        "summary": "No payments since 2026-01-05; one broken promise; lawyer's letter unanswered.",
    }
    return LitigationReferralRequest(**(fields | overrides))
