"""The Python API servicing systems use to hand loans to collections and report what happens to them.

    client = await connect()
    starter = CollectionsStarter(client)
    await starter.start_loan(loan)   # "started" | "new_cycle" | "already_running" | "already_closed"
    await starter.pay("L-1", 50_000, payment_id="P-881")   # signal: fire and forget, applied once per id
    await starter.promise("L-1", 50_000, date(2026, 12, 1), collector="li.na")  # update: accepted/rejected
    await starter.status("L-1")
    await starter.arrange_plan("L-1", [(20_000, date(2026, 12, 1)), (30_000, date(2027, 1, 1))], "li.na")
    await starter.waive_interest("L-1", 5_000, approver="wang.boss", reason="goodwill",
                                 actor=Actor("wang.boss", "supervisor"))  # -> CollectionStatus

Every update and signal carries a signed assertion of who acts (`authority`, README "Who may act"), minted
with this process's signing key (`signer`, default from OVERDUE_SIGNING_KEY_FILES): `actor` names the person
(the admin UI's logged-in user); without it the key's own identity acts (servicing for payments and closes,
the operator for the CLI). The collector or approver a request names must be that actor.

The workflow is addressed by its type name and handler names from `workflows.messages`, never by its class, so
a servicing integration depends on the message models only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError

from authority import Actor, CannotAct, Role, Signer
from domain.contact_profiles import ContactProfile, load_profiles
from domain.loan import DEFAULT_MAX_OVERDUE_YEARS, Loan, Payment, check_overdue_since
from domain.strategy import Strategy, load_strategy
from stack.settings import Settings
from starter.arrangement_calls import ArrangementCalls
from starter.errors import (
    CollectionClosed,
    ContactNotAllowed,
    NotALoan,
    PromiseRejected,
    RequestRefused,
    UnknownLoan,
    explain,
)
from starter.requests import (
    MAX_DEMO_DAY_SECONDS,
    MIN_DEMO_DAY_SECONDS,
    InvalidRequest,
    M,
    build_close,
    build_payment,
    build_plan_request,
    build_promise,
    check_demo_day_seconds,
    check_loan_id,
    check_payment,
)
from starter.starting import (
    PROGRESS_MIN_LOANS,
    START_RESULTS,
    StartFailed,
    StartResult,
    WorkflowIdTaken,
    initial_search_attributes,
    start_batch,
    start_cycle,
    start_details,
    start_summary,
    summarize,
)
from workflows import search_attributes as sa
from workflows.messages import (
    CLOSE_SIGNAL,
    PAYMENT_SIGNAL,
    STATUS_QUERY,
    TASK_QUEUE,
    WORKFLOW_NAME,
    CloseRequest,
    CollectionInput,
    CollectionStatus,
    workflow_id,
)

# Re-exported: servicing integrations, the CLI and the admin UI import these from here.
__all__ = [
    "MAX_DEMO_DAY_SECONDS",
    "MIN_DEMO_DAY_SECONDS",
    "PROGRESS_MIN_LOANS",
    "START_RESULTS",
    "Actor",
    "CollectionClosed",
    "CollectionsStarter",
    "ContactNotAllowed",
    "InvalidRequest",
    "NotALoan",
    "PromiseRejected",
    "RequestRefused",
    "StartFailed",
    "StartResult",
    "UnknownLoan",
    "WorkflowIdTaken",
    "build_close",
    "build_payment",
    "build_plan_request",
    "build_promise",
    "check_demo_day_seconds",
    "check_loan_id",
    "check_payment",
    "initial_search_attributes",
    "start_details",
    "start_summary",
    "summarize",
]

SERVICING_ACTIONS = (PAYMENT_SIGNAL, CLOSE_SIGNAL)  # servicing's own key acts for these by default

# -- the API -------------------------------------------------------------------------------------------------


class CollectionsStarter(ArrangementCalls):
    """Start loans into collections and send them payments, promises and close requests.

    `strategy`: the strategy new loans start with; by default loaded (once, on first start) from
    `settings.strategy_file` — a broken file raises `domain.strategy.StrategyError` listing its problems.
    Running loans keep the strategy they started with.
    `demo_day_seconds`: DEMO ONLY, makes one collections day last that many real seconds.
    """

    def __init__(
        self,
        client: Client,
        *,
        task_queue: str = TASK_QUEUE,
        strategy: Strategy | None = None,
        demo_day_seconds: float | None = None,
        settings: Settings | None = None,
        profiles: Mapping[str, ContactProfile] | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.client = client
        self._signer = signer
        self.task_queue = task_queue
        self.demo_day_seconds = check_demo_day_seconds(demo_day_seconds)
        self._strategy = strategy
        self._settings = settings
        self._profiles = profiles

    @property
    def strategy(self) -> Strategy:
        if self._strategy is None:
            settings = self._settings or Settings()
            self._strategy = load_strategy(settings.strategy_file)
        return self._strategy

    @property
    def max_overdue_years(self) -> int:
        """How far back `overdue_since` may lie when a loan starts (`settings.max_overdue_years`)."""
        return self._settings.max_overdue_years if self._settings else DEFAULT_MAX_OVERDUE_YEARS

    @property
    def profiles(self) -> Mapping[str, ContactProfile]:
        """Contact-rule profiles by jurisdiction, from `settings.contact_profiles_file` (loaded once)."""
        if self._profiles is None:
            settings = self._settings or Settings()
            self._profiles = load_profiles(settings.contact_profiles_file)
        return self._profiles

    @property
    def signer(self) -> Signer:
        """This process's signing keys (OVERDUE_SIGNING_KEY_FILES / OVERDUE_SIGNING_KEY), loaded once."""
        if self._signer is None:
            self._signer = Signer.from_settings()
        return self._signer

    def acting_as(self, *roles: Role) -> Actor:
        """The identity this process's own key acts as (servicing, an operator), or InvalidRequest."""
        try:
            return self.signer.default_actor(roles)
        except CannotAct as error:
            raise InvalidRequest([("actor", str(error))]) from None

    def _assertion(self, loan_id: str, action: str, request: BaseModel, actor: Actor | None) -> str:
        """A token asserting that `actor` (default: the key's own identity) sends exactly this request."""
        own: tuple[Role, ...] = ("servicing", "operator") if action in SERVICING_ACTIONS else ("operator",)
        who = actor or self.acting_as(*own)
        for name in ("collector", "approver"):
            named = getattr(request, name, None)
            if named is not None and named != who.name:
                raise InvalidRequest([(name, f"must be the user who acts ({who.name}), not {named!r}")])
        try:
            return self.signer.mint(who, workflow_id(loan_id), action, request)
        except CannotAct as error:
            raise InvalidRequest([("actor", str(error))]) from None

    def handle(self, loan_id: str) -> WorkflowHandle[Any, Any]:
        """The loan's collection workflow (its latest run)."""
        return self.client.get_workflow_handle(workflow_id(loan_id))

    # -- starting --------------------------------------------------------------------------------------------

    async def start_loan(self, loan: Loan) -> StartResult:
        """Start collections for one loan, at most once per collection cycle.

        A cycle is one overdue episode, named by the loan's `overdue_since` (a memo on the run); every cycle
        runs under the same workflow id `collection-{loan_id}`, so the loan id alone reaches its latest run.
        - "started": a new collection (or one an operator or a bug stopped: failed, terminated, cancelled,
          timed out — not a business outcome) was started.
        - "already_running": the loan's collection runs; it is never started twice or reset, so servicing can
          send the same start file every night.
        - "already_closed": the collection of this cycle ended in business terms (paid, written off,
          litigation, closed by servicing) and is final; an `overdue_since` equal to or before the closed
          cycle's is the same (or a stale) episode and starts nothing.
        - "new_cycle": the closed run's cycle is older than this loan's `overdue_since`: the loan was cured
          and is overdue again, so a new run starts its new cycle.
        Raises `InvalidRequest` for an `overdue_since` outside the accepted range (not in the borrower's
        future, at most `settings.max_overdue_years` back) and `WorkflowIdTaken` when the id belongs to
        another kind of workflow. See `starter.starting.start_cycle`.
        """
        today = datetime.now(UTC).astimezone(loan.zone).date()
        try:
            check_overdue_since(loan.overdue_since, today, self.max_overdue_years)
        except ValueError as error:
            raise InvalidRequest([("overdue_since", str(error))]) from None
        strategy = self.strategy
        segment = strategy.segment_for(loan)
        profile = self.profiles.get(loan.jurisdiction)
        if profile is None:
            raise InvalidRequest(
                [("jurisdiction", f"no contact profile {loan.jurisdiction!r} is configured")]
            )
        request = CollectionInput(
            loan=loan, strategy=strategy, profile=profile, demo_day_seconds=self.demo_day_seconds
        )
        return await start_cycle(
            self.client,
            request,
            task_queue=self.task_queue,
            search_attributes=initial_search_attributes(loan, segment),
            static_summary=start_summary(loan, segment),
            static_details=start_details(loan, strategy, segment, self.demo_day_seconds),
        )

    async def start_many(
        self, loans: Sequence[Loan], *, concurrency: int = 20, progress: bool = True
    ) -> dict[str, StartResult]:
        """Start every loan, at most `concurrency` start calls in flight; results by loan id, in input order.

        A progress bar is shown on a terminal for large batches. If some starts fail (server errors), the rest
        still run and `StartFailed` reports both; starting the same loans again is always safe.
        """
        _ = self.strategy, self.profiles  # load (and validate) the definitions once, before any start
        return await start_batch(self.start_loan, loans, concurrency=concurrency, progress=progress)

    # -- events for a running loan ---------------------------------------------------------------------------

    async def pay(
        self,
        loan_id: str,
        amount_minor: int,
        payment_id: str,
        currency: str | None = None,
        received_at: datetime | None = None,
        source: str = "servicing",
        *,
        actor: Actor | None = None,
    ) -> Payment:
        """Report a payment (a signal: servicing does not wait for collections). Applied at most once per
        `payment_id`, so re-sending after a timeout is safe. The currency defaults to the loan's; another
        currency raises `InvalidRequest` on `currency` before anything is sent (the workflow would refuse it
        without telling the sender)."""
        check_loan_id(loan_id)
        check_payment(amount_minor, payment_id, currency, received_at, source)
        loan_currency = await self.loan_currency(loan_id)
        if currency is not None and currency != loan_currency:
            raise InvalidRequest(
                [("currency", f"loan {loan_id} is collected in {loan_currency}, not {currency}")]
            )
        currency = loan_currency
        payment = build_payment(amount_minor, payment_id, currency, received_at, source)
        token = self._assertion(loan_id, PAYMENT_SIGNAL, payment, actor)
        handle = self.handle(loan_id)
        try:
            await handle.signal(PAYMENT_SIGNAL, args=[payment, token])
        except RPCError as error:
            raise await self._explain(loan_id, error) from None
        return payment

    async def loan_currency(self, loan_id: str) -> str:
        """The currency the loan is collected in, from its run's Currency search attribute (set at start):
        one describe call answered by the server alone. A `status` query instead needs a workflow task on a
        worker, a full replay when the loan is not cached, so every payment cost a loan's replay.
        Raises `UnknownLoan`, `NotALoan` or `CollectionClosed` as the signal would."""
        try:
            description = await self.handle(loan_id).describe()
        except RPCError as error:
            raise await self._explain(loan_id, error) from None
        if description.workflow_type != WORKFLOW_NAME:
            raise NotALoan(loan_id, description.workflow_type)
        if description.status != WorkflowExecutionStatus.RUNNING:
            status = description.status.name.lower() if description.status else "closed"
            raise CollectionClosed(loan_id, status)
        currency = description.typed_search_attributes.get(sa.CURRENCY)
        if currency is None:  # a run started without the attribute: ask the workflow itself
            return (await self.status(loan_id)).currency
        return currency

    async def close(
        self, loan_id: str, reason: str, note: str | None = None, *, actor: Actor | None = None
    ) -> CloseRequest:
        """Close the collection for a reason outside collections (restructured, sold, ...)."""
        check_loan_id(loan_id)
        request = build_close(reason, note)
        token = self._assertion(loan_id, CLOSE_SIGNAL, request, actor)
        try:
            description = await self.handle(loan_id).describe()
            if description.workflow_type != WORKFLOW_NAME:  # a signal to it would be dropped unseen
                raise NotALoan(loan_id, description.workflow_type)
            await self.handle(loan_id).signal(CLOSE_SIGNAL, args=[request, token])
        except RPCError as error:
            raise await self._explain(loan_id, error) from None
        return request

    async def status(self, loan_id: str) -> CollectionStatus:
        """Where the loan stands: stage, DPD, arrears, open promise, last and next step, outcome."""
        check_loan_id(loan_id)
        try:
            return await self.handle(loan_id).query(STATUS_QUERY, result_type=CollectionStatus)
        except RPCError as error:
            raise await self._explain(loan_id, error) from None
        except WorkflowQueryFailedError:
            raise await self._not_a_loan(loan_id) from None

    async def _update(
        self,
        loan_id: str,
        update: str,
        request: BaseModel,
        result_type: type[M],
        actor: Actor | None = None,
        refused: Callable[[str, str], Exception] = RequestRefused,
        fallback: str = "refused",
    ) -> M:
        """Execute a workflow update; a validator's or handler's refusal raises `refused(loan_id, reason)`."""
        token = self._assertion(loan_id, update, request, actor)
        try:
            return await self.handle(loan_id).execute_update(
                update, args=[request, token], result_type=result_type
            )
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            reason = cause.message if isinstance(cause, ApplicationError | FailureError) else str(cause)
            raise refused(loan_id, reason or fallback) from None
        except RPCError as error:
            raise await self._explain(loan_id, error) from None

    async def _not_a_loan(self, loan_id: str) -> Exception:
        """A query or update the workflow does not know: the id names another kind of workflow."""
        description = await self.handle(loan_id).describe()
        return NotALoan(loan_id, description.workflow_type)

    async def _explain(self, loan_id: str, error: RPCError) -> Exception:
        return await explain(self.handle(loan_id), loan_id, error)
