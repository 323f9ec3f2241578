"""Who may act on a loan: every update and signal that acts for a person carries a signed assertion
(`authority.tokens`), verified here inside the workflow against the trust ring the worker installed.

Verified means: signed by a trusted key that may assert the role, for this workflow id, this update or
signal, this exact request (digest), not expired on `workflow.now()`, not used before on this loan; and the
role may take this action, and the username the request names (collector, approver) is the asserted actor.

Children's signals (agency placed, letter sent, recall, hold, release, withdraw) are workflow to workflow:
they carry no assertion but a seal, a random id the parent puts in the child's input and both sides send
along, so a sender outside the pair (the Web UI, `temporal workflow signal`) cannot forge them without
reading the child's input (which payload encryption keeps from anyone without the codec key).
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from authority import trust
    from authority.keys import Role
    from authority.tokens import Assertion, Refused, verify
    from workflows import messages as m

ASSERTION_REFUSED = "AssertionRefused"
UNVERIFIED = "unverified"  # the journal's actor for a refused signal: nobody proved who sent it
SIGNAL_REFUSED = "signal_refused"

COLLECTORS: tuple[Role, ...] = ("collector", "supervisor", "admin", "operator")
SUPERVISORS: tuple[Role, ...] = ("supervisor", "admin", "operator")
# The borrower page (borrower/) acts for the borrower, who may take only what a borrower can ask for.
WITH_BORROWER: tuple[Role, ...] = (*COLLECTORS, "borrower")
BORROWER_ACTIONS = (
    m.PROMISE_UPDATE,
    m.REPAYMENT_PLAN_UPDATE,
    m.RAISE_DISPUTE_UPDATE,
    m.HARDSHIP_HOLD_UPDATE,
    m.OPT_OUT_UPDATE,
    m.PREFERRED_HOURS_UPDATE,
)

# update or signal -> (roles that may take it, the request field that must name the asserted actor)
POLICY: dict[str, tuple[tuple[Role, ...], str | None]] = {
    **{
        name: (COLLECTORS, "collector")
        for name in (
            m.PROMISE_UPDATE,
            m.RAISE_DISPUTE_UPDATE,
            m.RESOLVE_DISPUTE_UPDATE,
            m.HARDSHIP_HOLD_UPDATE,
            m.BREATHING_SPACE_UPDATE,
            m.CEASE_CONTACT_UPDATE,
            m.OPT_OUT_UPDATE,
            m.PREFERRED_HOURS_UPDATE,
            m.STOP_COLLECTION_UPDATE,
            m.CONTACT_OUTCOME_UPDATE,
            m.CLAIM_CONTACT_UPDATE,
            m.REPAYMENT_PLAN_UPDATE,
        )
    },
    **{
        name: (SUPERVISORS, "approver")
        for name in (
            m.SETTLEMENT_UPDATE,
            m.WAIVE_INTEREST_UPDATE,
            m.HOLD_STAGE_UPDATE,
            m.RELEASE_STAGE_HOLD_UPDATE,
            m.ESCALATE_STAGE_UPDATE,
            m.RECALL_FROM_AGENCY_UPDATE,
        )
    },
    **{name: (WITH_BORROWER, "collector") for name in BORROWER_ACTIONS},
    # A borrower may propose a settlement only within the strategy's floor for the loan's band (the
    # validator applies `domain.borrower_plans`); the request names the borrower as its approver.
    m.SETTLEMENT_UPDATE: ((*SUPERVISORS, "borrower"), "approver"),
    # A provider's receipt reaches the loan through the product's inbound webhooks, acting for servicing.
    m.CONTACT_POINT_UNREACHABLE_UPDATE: (("servicing", "operator"), None),
    m.PAYMENT_SIGNAL: (("servicing", "operator"), None),
    m.CLOSE_SIGNAL: (("servicing", "operator", "supervisor", "admin"), None),
}


def check(action: str, request: object, token: str | None, used: dict[str, datetime]) -> Assertion:
    """The verified assertion for this request, or `Refused` naming why."""
    roles, actor_field = POLICY[action]
    # cryptography's Rust core imports `cryptography.exceptions` when a signature fails; inside the sandbox
    # that import would load the extension a second time and abort the process, so it passes through.
    with workflow.unsafe.imports_passed_through():
        assertion = verify(
            token,
            trust.installed(),
            workflow_id=workflow.info().workflow_id,
            action=action,
            request=request,
            now=workflow.now(),
        )
    if assertion.nonce in used:
        raise Refused("already used (each signed request is sent once)")
    if assertion.role not in roles:
        raise Refused(f"role {assertion.role} may not {action} (needs {' or '.join(roles)})")
    named = getattr(request, actor_field) if actor_field else None
    if actor_field and named != assertion.actor:
        raise Refused(f"{actor_field} must be the asserted actor")
    return assertion


def spend(used: dict[str, datetime], assertion: Assertion, now: datetime) -> None:
    """Remember the nonce until the token expires (a token is good for one request); forget expired ones."""
    for nonce in [n for n, until in used.items() if until <= now]:
        del used[nonce]
    used[assertion.nonce] = assertion.expires_at
