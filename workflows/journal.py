"""The loan's journal entries, built from the typed contract models and written in idempotent batches.

Entries wait in `pending` until the `record_journal` activity has written them: nothing is removed before it
is stored, and what is still pending at continue-as-new travels in the next run's input. An entry whose data
the contract refuses is still sent (untyped), so the activity keeps it apart as a dead letter with the reason
instead of the workflow failing or dropping it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from domain.case import CollectionCase
    from domain.promise import PromiseToPay


class CaseJournal:
    def __init__(self, case: CollectionCase, pending: list[contracts.JournalEntry]) -> None:
        self._case = case
        self.pending: list[contracts.JournalEntry] = list(pending)

    def add(self, data: contracts._JournalData, key: str, at: datetime) -> None:
        case = self._case
        self.pending.append(
            data.entry(
                idempotency_key=self.key(key),
                loan_id=case.loan.loan_id,
                jurisdiction=case.loan.jurisdiction,
                at=at,
                cycle=case.cycle,
            )
        )

    def key(self, key: str) -> str:
        """Loan, cycle and event: a new collection cycle of the same loan never collides with an old one."""
        return f"{self._case.loan.loan_id}:{self._case.cycle.isoformat()}:{key}"

    def raw(
        self, kind: contracts.JournalKind, key: str, at: datetime, **data: str | int | bool | None
    ) -> None:
        """An entry the typed model refused (a caller bug or bad input that got through): sent as it is, so
        the activity dead-letters it with the reason rather than the loan losing it."""
        case = self._case
        self.pending.append(
            contracts.JournalEntry(
                kind=kind,
                idempotency_key=self.key(key),
                loan_id=case.loan.loan_id,
                jurisdiction=case.loan.jurisdiction,
                at=at,
                data=data,
                cycle=case.cycle,
            )
        )

    def typed(
        self, model: type[contracts._JournalData], key: str, at: datetime, **data: str | int | bool | None
    ) -> None:
        try:
            built = model(**data)
        except ValidationError:
            self.raw(model.KIND, key, at, **data)
            return
        self.add(built, key, at)

    # -- one method per kind of fact ------------------------------------------------------------------------

    def attempt(
        self,
        key: str,
        at: datetime,
        channel: str,
        template: str | None,
        ref: str | None,
        status: str,
        actor: str = "system",
    ) -> None:
        address_kind = {"sms": "phone", "call": "phone", "email": "email", "push": "app"}.get(
            channel, "postal"
        )
        self.typed(
            contracts.JournalContactAttempt,
            f"attempt:{key}:{status}",
            at,
            channel=channel,
            template=template,
            content_ref=ref,
            provider_id=ref,
            status=status,
            address_kind=address_kind,
            actor=actor,
        )

    def deferral(
        self, step_key: str, at: datetime, channel: str, rule: str, reason: str, until: datetime | None
    ) -> None:
        self.typed(
            contracts.JournalDeferral,
            f"deferral:{step_key}:{workflow.uuid4()}",
            at,
            step_key=step_key,
            channel=channel,
            rule=rule,
            reason=reason,
            deferred_from=at.isoformat(),
            deferred_until=until.isoformat() if until else None,
        )

    def hold(
        self,
        key: str,
        at: datetime,
        kind: str,
        action: str,
        until: datetime | None,
        detail: str | None,
        actor: str,
    ) -> None:
        self.typed(
            contracts.JournalHold,
            key,
            at,
            kind=kind,
            action=action,
            until=until.isoformat() if until else None,
            detail=detail,
            actor=actor,
        )

    def promise(self, promise: PromiseToPay, fate: str, actor: str, at: datetime) -> None:
        self.typed(
            contracts.JournalPromise,
            f"promise:{promise.promise_id}:{fate}",
            at,
            promise_id=promise.promise_id,
            amount_minor=promise.amount_minor,
            currency=promise.currency,
            due_date=promise.due_date.isoformat(),
            fate=fate,
            actor=actor,
        )

    def payment(self, key: str, at: datetime, **data: str | int | bool | None) -> None:
        self.typed(contracts.JournalPayment, key, at, **data)

    def stage(self, at: datetime, before: str | None, after: str, dpd: int, reason: str) -> None:
        self.typed(
            contracts.JournalStageTransition,
            f"stage:{after}",
            at,
            from_stage=before,
            to_stage=after,
            dpd=dpd,
            reason=reason,
        )

    def action(
        self, key: str, at: datetime, who: str, action: str, outcome: str | None, detail: str | None
    ) -> None:
        self.typed(
            contracts.JournalCollectorAction,
            key,
            at,
            collector=who,
            action=action,
            outcome=outcome,
            detail=detail,
        )
