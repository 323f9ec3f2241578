"""LegalCaseWorkflow: the lawyer's letter, its response window, and the litigation referral.

Started by LoanCollectionWorkflow as a child when the loan reaches the legal stage, so an operator reads the
legal case as its own history: letter generated (PDF, sha256), sent by registered mail, the response window
waited on the collections clock, then referred to litigation if the balance is worth suing for — unless the
parent withdraws the case (paid, closed) first.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import contracts
    from activities.heartbeats import HEARTBEAT_TIMEOUT
    from domain.calendar import end_of_local_day
    from domain.clock import CollectionsClock
    from workflows.retries import CASE_RETRY

LEGAL_CASE_WORKFLOW = "LegalCaseWorkflow"
WITHDRAW_SIGNAL = "withdraw"
# Holds bind the legal case: while held (dispute, Breathing Space, hardship, cease) nothing is filed.
HOLD_SIGNAL = "hold"
RELEASE_SIGNAL = "release"
LETTER_SENT_SIGNAL = "letter_sent"  # to the parent: the letter went out by registered mail


class LegalCaseInput(BaseModel):
    letter: contracts.LawyerLetterRequest
    timezone: str
    clock: CollectionsClock
    referral: contracts.LitigationReferralRequest | None  # None: below the litigation threshold
    parent_workflow_id: str | None = None
    seal: str | None = None  # sent with every signal between parent and child (workflows.actors)


class HoldRequest(BaseModel):
    reason: str


class LetterDispatched(BaseModel):
    document_id: str
    tracking_reference: str
    respond_by: date


class WithdrawRequest(BaseModel):
    reason: Literal["paid", "closed", "written_off"]


class LegalOutcome(BaseModel):
    document_id: str
    sha256: str
    tracking_reference: str | None
    case_id: str | None  # set when referred to litigation
    ended: Literal["referred", "window_passed", "withdrawn"]


@workflow.defn(name=LEGAL_CASE_WORKFLOW)
class LegalCaseWorkflow:
    @workflow.init
    def __init__(self, input: LegalCaseInput) -> None:
        self._withdrawn: str | None = None
        self._held: str | None = None
        self._seal = input.seal

    def _from_parent(self, seal: str | None, signal: str) -> bool:
        if seal is not None and seal == self._seal:
            return True
        workflow.logger.warning("%s signal without the parent's seal ignored", signal)
        return False

    @workflow.signal(name=WITHDRAW_SIGNAL)
    def withdraw(self, request: WithdrawRequest, seal: str | None = None) -> None:
        if self._from_parent(seal, WITHDRAW_SIGNAL):
            self._withdrawn = self._withdrawn or request.reason

    @workflow.signal(name=HOLD_SIGNAL)
    def hold(self, request: HoldRequest, seal: str | None = None) -> None:
        if self._from_parent(seal, HOLD_SIGNAL):
            self._held = request.reason

    @workflow.signal(name=RELEASE_SIGNAL)
    def release(self, seal: str | None = None) -> None:
        if self._from_parent(seal, RELEASE_SIGNAL):
            self._held = None

    @workflow.run
    async def run(self, input: LegalCaseInput) -> LegalOutcome:
        letter_request = input.letter
        letter = await workflow.execute_activity(
            contracts.GENERATE_LAWYER_LETTER,
            letter_request,
            result_type=contracts.LawyerLetterReceipt,
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=CASE_RETRY,
            summary=f"lawyer's letter ({letter_request.locale}), respond by {letter_request.respond_by}",
        )
        # A hold raised since the case opened binds the dispatch too: the letter is a contact.
        await workflow.wait_condition(lambda: self._held is None or self._withdrawn is not None)
        if self._withdrawn is not None:
            workflow.set_current_details("**Closed**: withdrawn before the letter was sent")
            return LegalOutcome(
                document_id=letter.document_id,
                sha256=letter.sha256,
                tracking_reference=None,
                case_id=None,
                ended="withdrawn",
            )
        mail = await workflow.execute_activity(
            contracts.DISPATCH_REGISTERED_MAIL,
            contracts.RegisteredMailRequest(
                idempotency_key=f"{letter_request.idempotency_key}:mail",
                loan_id=letter_request.loan_id,
                document_id=letter.document_id,
                locale=letter_request.locale,
            ),
            result_type=contracts.RegisteredMailReceipt,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=CASE_RETRY,
            summary="send the letter by registered mail",
        )
        workflow.set_current_details(
            f"**Letter** {letter.document_id} (sha256 {letter.sha256[:12]}…) sent, tracking "
            f"{mail.tracking_reference}; response due {letter_request.respond_by}"
        )
        if input.parent_workflow_id is not None:
            sent = LetterDispatched(
                document_id=letter.document_id,
                tracking_reference=mail.tracking_reference,
                respond_by=letter_request.respond_by,
            )
            await workflow.get_external_workflow_handle(input.parent_workflow_id).signal(
                LETTER_SENT_SIGNAL, args=[sent, input.seal]
            )
        # The borrower has until the end of the respond-by day, in their own time zone, and never less than
        # the whole window counted from the dispatch (a slow dispatch must not shorten it).
        window = timedelta(days=(letter_request.respond_by - letter_request.issued_on).days)
        deadline: datetime = max(
            end_of_local_day(letter_request.respond_by, input.timezone),
            input.clock.now(workflow.now()) + window,
        )
        try:
            await workflow.wait_condition(
                lambda: self._withdrawn is not None,
                timeout=input.clock.real_delay(deadline - input.clock.now(workflow.now())),
                timeout_summary=f"response window until {letter_request.respond_by}",
            )
        except TimeoutError:
            pass
        if self._withdrawn is None and input.referral is not None and self._held is not None:
            # The whole window has passed, but a hold binds the case: nothing is filed until it is lifted
            # (or the parent withdraws the case).
            workflow.set_current_details(f"**Held**: {self._held}; litigation waits")
            await workflow.wait_condition(lambda: self._held is None or self._withdrawn is not None)
        if self._withdrawn is not None or input.referral is None:
            ended: Literal["window_passed", "withdrawn"] = "withdrawn" if self._withdrawn else "window_passed"
            workflow.set_current_details(f"**Closed**: {ended}")
            return LegalOutcome(
                document_id=letter.document_id,
                sha256=letter.sha256,
                tracking_reference=mail.tracking_reference,
                case_id=None,
                ended=ended,
            )
        referral = await workflow.execute_activity(
            contracts.REFER_TO_LITIGATION,
            input.referral.model_copy(
                update={"document_ids": [*input.referral.document_ids, letter.document_id]}
            ),
            result_type=contracts.LitigationReferralReceipt,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=CASE_RETRY,
            summary="refer to litigation with the documents bundle",
        )
        workflow.set_current_details(f"**Referred to litigation**: case {referral.case_id}")
        return LegalOutcome(
            document_id=letter.document_id,
            sha256=letter.sha256,
            tracking_reference=mail.tracking_reference,
            case_id=referral.case_id,
            ended="referred",
        )
