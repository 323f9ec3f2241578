"""Servicing's signals, the children's reports and the promise to pay: handlers of LoanCollectionWorkflow.

Handlers are synchronous: they change the case (and journal what happened) and wake the loop, which does every
side effect. A payment or close that arrives while the run continues as new is in the case the next run gets.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from domain import borrower_plans
    from domain.case import CloseRequest, LetterSent
    from domain.loan import Payment, format_money
    from domain.promise import PromiseRequest, PromiseToPay, promise_deadline, promise_rejection
    from workflows import projection
    from workflows.agency_placement import PLACED_SIGNAL
    from workflows.handlers import CaseHandlers
    from workflows.legal_case import LETTER_SENT_SIGNAL, LetterDispatched
    from workflows.messages import CLOSE_SIGNAL, PAYMENT_SIGNAL, PROMISE_UPDATE, PromiseAccepted


class CaseMessages(CaseHandlers):
    @workflow.signal(name=PAYMENT_SIGNAL)
    def payment(self, payment: Payment, assertion: str | None = None) -> None:
        if not self._signal_verified(PAYMENT_SIGNAL, payment, assertion):
            return  # journaled and counted: an unverified payment changes nothing
        rt, case = self._rt, self._rt.case
        if case.closed:
            workflow.logger.info(
                "payment %s after close: recorded by servicing, not applied", payment.payment_id
            )
            return
        now = rt.now()
        promise, plan, offer = case.open_promise, case.open_plan, case.open_settlement
        effect = case.apply_payment(payment, now)
        rt.journal.payment(
            f"payment:{payment.payment_id}" + ("" if effect.applied else f":{workflow.uuid4()}"),
            now,
            payment_id=payment.payment_id,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            received_at=payment.received_at.isoformat(),
            source=payment.source,
            applied=effect.applied,
            reason=effect.reason,
        )
        if promise is not None and promise.status == "kept":
            rt.journal.promise(promise, "kept", "servicing", now)
        if plan is not None and plan.status == "kept":
            rt.journal.action(
                f"plan:{plan.plan_id}:kept", now, "servicing", "repayment_plan_kept", "kept", None
            )
        if offer is not None and offer.status == "paid":
            rt.journal.action(
                f"settlement:{offer.offer_id}:paid",
                now,
                "servicing",
                "settlement_paid",
                format_money(offer.paid_toward_minor, offer.currency),
                None,
            )
        workflow.logger.info("payment %s: %s", payment.payment_id, effect.reason)
        if effect.applied:
            rt.wake()

    @workflow.signal(name=CLOSE_SIGNAL)
    def close(self, request: CloseRequest, assertion: str | None = None) -> None:
        if not self._signal_verified(CLOSE_SIGNAL, request, assertion):
            return
        case = self._rt.case
        if not case.closing:
            case.close_request = request
            self._rt.wake()

    @workflow.signal(name=PLACED_SIGNAL)
    def agency_placed(self, receipt: contracts.PlacementReceipt, seal: str | None = None) -> None:
        """From our AgencyPlacementWorkflow child (its seal proves it): the agency has the account."""
        if not self._children.sealed_by_placement(seal):
            self._refused_signal(PLACED_SIGNAL, "not from this loan's placement (seal)")
            return
        case = self._rt.case
        case.placement = projection.placement_of(receipt, self._rt.now())
        case.placed_with = [*case.placed_with, receipt.agency_id]
        self._rt.wake()

    @workflow.signal(name=LETTER_SENT_SIGNAL)
    def letter_sent(self, sent: LetterDispatched, seal: str | None = None) -> None:
        """From our LegalCaseWorkflow child (its seal proves it): the letter went out by registered mail."""
        if not self._children.sealed_by_legal(seal):
            self._refused_signal(LETTER_SENT_SIGNAL, "not from this loan's legal case (seal)")
            return
        rt, case = self._rt, self._rt.case
        now = rt.now()
        case.letter = LetterSent(document_id=sent.document_id, dispatched_at=now, respond_by=sent.respond_by)
        case.contacted("letter", now)
        rt.journal.attempt(f"letter:{sent.document_id}", now, "letter", None, sent.tracking_reference, "sent")

    @workflow.update(name=PROMISE_UPDATE)
    def promise_to_pay(self, request: PromiseRequest, assertion: str | None = None) -> PromiseAccepted:
        self._spend(assertion)
        rt, case = self._rt, self._rt.case
        now = rt.now()
        promise = PromiseToPay(
            promise_id=str(workflow.uuid4()),
            amount_minor=request.amount_minor,
            currency=case.loan.currency,
            due_date=request.due_date,
            deadline=promise_deadline(request.due_date, case.strategy.promise, case.loan.zone),
            collector=request.collector,
            note=request.note,
            made_at=now,
        )
        case.promises = [*case.promises, promise]
        rt.journal.promise(promise, "made", request.collector, now)
        rt.wake()
        return PromiseAccepted(promise_id=promise.promise_id, deadline=promise.deadline)

    @promise_to_pay.validator
    def _validate_promise(self, request: PromiseRequest, assertion: str | None = None) -> None:
        asserted = self._verify(PROMISE_UPDATE, request, assertion)
        # A validator rejects before anything reaches history: a rejected promise changes nothing.
        case = self._rt.case
        today = case.local_today(self._rt.now())
        reason = (
            promise_rejection(
                request,
                arrears_minor=case.arrears_minor,
                today=today,
                rules=case.strategy.promise,
                has_open_promise=case.open_promise is not None,
                closed=case.closing,
            )
            or self._conflict()  # an open promise was refused above; a plan or settlement offer here
            or (  # the borrower's own promise: within the strategy's days for the loan's band
                borrower_plans.first(
                    borrower_plans.promise_problems(self._borrower_bounds(), request.due_date, today=today)
                )
                if asserted.role == "borrower"
                else None
            )
        )
        if reason:
            self._reject(reason, "PromiseRejected")
