"""What the collections API raises: each names the loan and says what to do, never a stack of RPC details.

Re-exported by `starter.api`, where servicing integrations, the CLI and the admin UI import them from.
"""

from __future__ import annotations

from datetime import datetime

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from workflows.messages import WORKFLOW_NAME, workflow_id


class UnknownLoan(LookupError):
    """No collection workflow exists for this loan id."""

    def __init__(self, loan_id: str) -> None:
        self.loan_id = loan_id
        super().__init__(f"no collection for loan {loan_id} (workflow {workflow_id(loan_id)} not found)")


class NotALoan(LookupError):
    """The workflow found under this loan id is not a loan's collection (e.g. a legal case or placement)."""

    def __init__(self, loan_id: str, workflow_type: str) -> None:
        self.loan_id = loan_id
        self.workflow_type = workflow_type
        super().__init__(
            f"{loan_id} is not a loan id: workflow {workflow_id(loan_id)} is a {workflow_type}, "
            "not a loan's collection (give the loan's own id)"
        )


class CollectionClosed(RuntimeError):
    """The loan's collection has ended, so it takes no more payments, promises or close requests."""

    def __init__(self, loan_id: str, status: str) -> None:
        self.loan_id = loan_id
        self.status = status
        super().__init__(f"the collection of loan {loan_id} has already ended ({status})")


class PromiseRejected(Exception):
    """The workflow refused a promise to pay; `reason` names the field to fix (e.g. 'amount_minor: ...')."""

    def __init__(self, loan_id: str, reason: str) -> None:
        self.loan_id = loan_id
        self.reason = reason
        super().__init__(f"promise for loan {loan_id} rejected: {reason}")


class RequestRefused(Exception):
    """The workflow refused a collector's hold, preference, outcome or arrangement; nothing changed.
    `reason` names the field to fix ("instalments[1].due_date: ...") or "loan: ..." for the case."""

    def __init__(self, loan_id: str, reason: str) -> None:
        self.loan_id = loan_id
        self.reason = reason
        super().__init__(f"{loan_id}: {reason}")


class ContactNotAllowed(Exception):
    """The contact rules refuse a call or visit now (hours, caps, holds, opt-outs, cease); nothing counted.
    `allowed_at`: when it becomes allowed (the workflow's clock), or None while the restriction lasts."""

    def __init__(self, loan_id: str, reason: str, allowed_at: datetime | None) -> None:
        self.loan_id = loan_id
        self.reason = reason
        self.allowed_at = allowed_at
        when = f"; allowed from {allowed_at.isoformat()}" if allowed_at else "; not while this lasts"
        super().__init__(f"{loan_id}: {reason}{when}")


async def explain(handle: WorkflowHandle[object, object], loan_id: str, error: RPCError) -> Exception:
    """NOT_FOUND means either no such loan or a finished collection; tell the caller which."""
    if error.status != RPCStatusCode.NOT_FOUND:
        return error
    try:
        description = await handle.describe()
    except RPCError as described:
        if described.status == RPCStatusCode.NOT_FOUND:
            return UnknownLoan(loan_id)
        return described
    if description.workflow_type != WORKFLOW_NAME:
        return NotALoan(loan_id, description.workflow_type)
    if description.status == WorkflowExecutionStatus.RUNNING:
        return error
    status = description.status.name.lower() if description.status else "closed"
    return CollectionClosed(loan_id, status)
