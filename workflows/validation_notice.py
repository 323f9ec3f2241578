"""US Regulation F §1006.34: the validation notice goes with the first communication, in writing.

The decision (domain.decision) asks for it before any other contact of a loan whose profile has a validation
period. It goes by e-mail when the borrower has an address the rules allow now (the e-mail template carries
the Model Form B-1 block), otherwise by letter to the postal address (a PDF sent by registered mail). With
neither on file nothing can carry it: the case records that, other contacts are refused by the rules, and a
collector traces an address.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from domain.contact_plan import address_for, ask_rules, outage_retry_at
    from domain.decision import NOTICE_KEY
    from workflows import step_requests
    from workflows.contact import ContactDesk
    from workflows.retries import CASE_RETRY, CONTACT_RETRY
    from workflows.runtime import ActivityFailed

NOTICE_TEMPLATE = "statement"  # the e-mail statement; with validation_notice set it carries the B-1 block
# Reg F: the validation period ends 30 days after the consumer receives the notice (5 days assumed for mail).
DISPUTE_DAYS = 35


class NoticeDesk:
    def __init__(self, desk: ContactDesk) -> None:
        self.desk = desk
        self.rt = desk.rt

    async def send(self) -> None:
        rt, case = self.rt, self.rt.case
        now = rt.now()
        case.deferrals.pop(NOTICE_KEY, None)  # its time has come (the decision waited for it)
        email = address_for(case, "email")
        if email is not None:
            decision = ask_rules(case, "email", email, now)
            if decision.allowed:
                if await self._by_email(email):
                    return
            elif decision.at is not None:
                case.deferrals[NOTICE_KEY] = decision.at  # by e-mail in the morning, not registered mail now
                rt.journal.deferral(NOTICE_KEY, now, "email", decision.rule, decision.reason, decision.at)
                return
        if NOTICE_KEY in case.deferrals:
            return  # an outage deferred the e-mail (set just now): tried again then
        if address_for(case, "letter") is not None:
            await self._by_letter()
            return
        case.notice_undeliverable = True
        await self.desk.open_task(
            f"{NOTICE_KEY}:trace", "trace_address", "no address for the validation notice"
        )
        rt.journal.deferral(
            NOTICE_KEY, now, "letter", "unreachable", "no e-mail or postal address on file", None
        )

    async def _by_email(self, address: str) -> bool:
        rt, case = self.rt, self.rt.case
        request = step_requests.message_request(case, NOTICE_KEY, "email", NOTICE_TEMPLATE, rt.now())
        request = request.model_copy(
            update={"variables": {**request.variables, "validation_notice": "included"}}
        )
        try:
            receipt = await rt.activity(
                contracts.SEND_MESSAGE,
                request,
                contracts.MessageReceipt,
                "email: validation notice",
                CONTACT_RETRY,
            )
        except ActivityFailed as failed:
            now = rt.now()
            rt.journal.attempt(NOTICE_KEY, now, "email", NOTICE_TEMPLATE, None, "failed")
            if failed.kind == contracts.CONTACT_POINT_INVALID:
                self.desk.unreachable(address)
            elif failed.kind != contracts.MESSAGE_REJECTED:
                case.deferrals[NOTICE_KEY] = outage_retry_at(now)
            return False
        case.deferrals.pop(NOTICE_KEY, None)
        self.desk.sent(NOTICE_KEY, "email", address, NOTICE_TEMPLATE, receipt, notice=True)
        return True

    async def _by_letter(self) -> None:
        rt, case = self.rt, self.rt.case
        now = rt.now()
        today = case.local_today(now)
        key = step_requests.idempotency_key(case, NOTICE_KEY)
        borrower = case.loan.borrower
        assert borrower.postal_address is not None
        document = await rt.try_activity(
            contracts.GENERATE_VALIDATION_NOTICE,
            contracts.ValidationNoticeRequest(
                idempotency_key=key,
                loan_id=case.loan.loan_id,
                locale=borrower.locale,
                lender=case.loan.lender,
                borrower_name=borrower.name,
                postal_address=borrower.postal_address,
                currency=case.loan.currency,
                amount_overdue_minor=case.arrears_minor,
                overdue_since=case.anchor,
                issued_on=today,
                dispute_by=today + timedelta(days=DISPUTE_DAYS),
                product=case.loan.product,
            ),
            contracts.ValidationNoticeReceipt,
            "validation notice letter (PDF)",
            CASE_RETRY,
        )
        mail = None
        if document is not None:
            mail = await rt.try_activity(
                contracts.DISPATCH_REGISTERED_MAIL,
                contracts.RegisteredMailRequest(
                    idempotency_key=f"{key}:mail",
                    loan_id=case.loan.loan_id,
                    document_id=document.document_id,
                    locale=borrower.locale,
                ),
                contracts.RegisteredMailReceipt,
                "send the validation notice by registered mail",
                CASE_RETRY,
            )
        now = rt.now()
        if mail is None:
            case.deferrals[NOTICE_KEY] = outage_retry_at(now)  # the printer or the carrier failed: try again
            return
        case.documents = [*case.documents, document.document_id]
        case.contacted("letter", now)
        case.contact = case.contact.model_copy(update={"validation_notice_sent_at": now})
        rt.journal.attempt(NOTICE_KEY, now, "letter", "validation_notice", mail.tracking_reference, "sent")
