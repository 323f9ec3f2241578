"""Sample loans in the shapes servicing systems send (JSON record, CSV row)."""

from __future__ import annotations

from typing import Any


def loan_record(loan_id: str = "L-1", **changes: Any) -> dict[str, Any]:
    """A valid loan as a servicing system sends it (JSON shape)."""
    record: dict[str, Any] = {
        "loan_id": loan_id,
        "borrower": {
            "name": "张伟",
            "phone": "+8613800138000",
            "email": "zhang.wei@example.cn",
            "locale": "zh-CN",
            "timezone": "Asia/Shanghai",
        },
        "currency": "CNY",
        "amount_overdue_minor": 123450,
        "principal_outstanding_minor": 900000,
        "overdue_since": "2026-10-01",
        "risk_grade": "C",
    }
    record.update(changes)
    return record


CSV_HEADER = (
    "loan_id,borrower_name,phone,email,locale,timezone,postal_address,currency,amount_overdue_minor,"
    "principal_outstanding_minor,overdue_since,product,risk_grade,segment,jurisdiction,lender"
)


def csv_row(loan_id: str = "L-1", **changes: str) -> str:
    cells = {
        "loan_id": loan_id,
        "borrower_name": "Mary Smith",
        "phone": "+12125550123",
        "email": "mary.smith@example.com",
        "locale": "en",
        "timezone": "America/New_York",
        "postal_address": "",  # a cell with commas must be quoted: '"1 Main St, Springfield"'
        "currency": "USD",
        "amount_overdue_minor": "45000",
        "principal_outstanding_minor": "300000",
        "overdue_since": "2026-10-01",
        "product": "consumer_loan",
        "risk_grade": "B",
        "segment": "",
        "jurisdiction": "us",
        "lender": "Overdue Demo Lending",
    }
    cells.update(changes)
    return ",".join(cells[column] for column in CSV_HEADER.split(","))
