"""The borrower page: the link of a message -> a one-time code -> what is owed, and what the borrower can do.

    GET  /l/{token}            the code page, or (with this link's session) the account page
    POST /l/{token}/code       send a code to the contact point the message went to
    POST /l/{token}/verify     check it; opens a short session bound to this link (cookie scoped to it)
    POST /l/{token}/{action}   pay, promise, plan, dispute, hardship, optout, hours, callback

Nothing about the debt (not even the lender's amount) is shown before the code: an unknown, expired or
revoked link, or a link without a session, shows the same few words whoever opens it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from temporalio.exceptions import ApplicationError

from activities.messaging import ChannelAdapter, RenderedMessage
from borrower import account
from borrower.actions import BorrowerActions, Outcome, minor_units, plan_offer
from borrower.codes import check_code, issue_code, open_session, session_valid
from borrower.links import Link, collection_ended, find_link, link_delivery, revoke_links
from borrower.settings import BorrowerSettings
from borrower.texts import texts_for
from starter.api import CollectionClosed, CollectionsStarter, UnknownLoan
from starter.requests import InvalidRequest

log = structlog.get_logger("borrower")
COOKIE = "borrower_session"
ACTIONS = ("promise", "plan", "settle", "dispute", "hardship", "optout", "hours", "callback")
CODE_TEXT = {
    "en": "Your code is {code}. It expires in 10 minutes. Never share it: we will not ask you for it.",
    "zh-CN": "您的验证码是{code}，10分钟内有效。请勿告诉他人，我们不会向您索要验证码。",
}


@dataclass
class Services:
    pool: asyncpg.Pool
    starter: CollectionsStarter  # signs as Actor("borrower", "borrower")
    channel: ChannelAdapter | None  # delivers the codes (None: no code can be sent)
    payments: Any | None = None  # payments.PaymentService (start_checkout); None: no pay button
    settings: BorrowerSettings = field(default_factory=BorrowerSettings)


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="Borrower page", docs_url=None, redoc_url=None, openapi_url=None)
    pages = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
    )
    actions = BorrowerActions(services.starter, services.pool)
    if services.payments is not None:
        # The provider's webhooks land here too (payments/webhook.py): the page that starts a checkout is the
        # one the provider reports back to. Imported only when payments are on.
        from payments.webhook import router as payments_webhook

        app.state.payments = services.payments
        app.include_router(payments_webhook)
    settings = services.settings

    def page(name: str, locale: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = pages.get_template(name).render(t=texts_for(locale), **values)
        response = HTMLResponse(html, status_code=status)
        # Nothing here may be cached or framed: a shared phone's back button must not show the account.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def invalid(request: Request) -> HTMLResponse:
        locale = "zh-CN" if request.headers.get("accept-language", "").lower().startswith("zh") else "en"
        t = texts_for(locale)
        return page("message.html", locale, 404, heading=t("invalid_title"), body=t("invalid_body"))

    def ended(locale: str) -> HTMLResponse:
        t = texts_for(locale)
        return page("message.html", locale, 410, heading=t("ended_title"), body=t("ended_body"))

    async def opened(request: Request, token: str) -> tuple[Link, str, str] | Response:
        """The link, its channel and locale; or the page that says it cannot be used."""
        link = await find_link(services.pool, token)
        delivery = await link_delivery(services.pool, link) if link else None
        if link is None or delivery is None:
            return invalid(request)
        if not link.usable(datetime.now(UTC)) or await collection_ended(services.pool, link):
            return ended(delivery.locale)
        return link, delivery.channel, delivery.locale

    def verify_page(token: str, channel: str, locale: str, status: int = 200, **values: Any) -> HTMLResponse:
        t = texts_for(locale)
        return page(
            "verify.html",
            locale,
            status,
            heading=t("verify_title"),
            base=f"/l/{token}",
            channel=channel,
            **values,
        )

    async def paid_thanks(token: str, checkout: str) -> HTMLResponse | None:
        """Back from the provider with a payment it confirmed for this link's loan, after the collection
        ended (paying the whole arrears ends it, often before the redirect): thanks, not "no longer active".
        Only a checkout id of this loan that the provider confirmed opens it: nothing else is revealed."""
        link = await find_link(services.pool, token)
        delivery = await link_delivery(services.pool, link) if link else None
        if link is None or delivery is None or len(checkout) > 119:
            return None
        confirmed = await services.pool.fetchval(
            "SELECT 1 FROM payment_intents WHERE provider_id = $1 AND loan_id = $2 AND status = 'confirmed'",
            checkout,
            link.loan_id,
        )
        if not confirmed:
            return None
        t = texts_for(delivery.locale)
        return page(
            "message.html", delivery.locale, 200, heading=t("paid_closed_title"), body=t("paid_closed_body")
        )

    @app.get("/l/{token}")
    async def show(
        request: Request, token: str, paid: str | None = None, checkout: str | None = None
    ) -> Response:
        shown = await _show(request, token, paid)
        if shown.status_code == 410 and paid and checkout and services.payments is not None:
            thanks = await paid_thanks(token, checkout)
            if thanks is not None:
                return thanks
        return shown

    async def _show(request: Request, token: str, paid: str | None) -> Response:
        found = await opened(request, token)
        if not isinstance(found, tuple):
            return found
        link, channel, locale = found
        session = request.cookies.get(COOKIE)
        if not await session_valid(services.pool, link, session):
            return verify_page(token, channel, locale)
        notice = texts_for(locale)("paid_back") if paid else None
        return await account_page(link, token, locale, session or "", notice=notice)

    async def account_page(
        link: Link, token: str, locale: str, session: str, *, status: int = 200, **values: Any
    ) -> Response:
        t = texts_for(locale)
        try:
            loan = await services.starter.status(link.loan_id)
        except (UnknownLoan, CollectionClosed):
            return ended(locale)
        if loan.outcome is not None or (link.cycle is not None and loan.cycle not in (None, link.cycle)):
            await revoke_links(services.pool, link.loan_id)  # ended, or an older cycle's link
            return ended(locale)
        shown = account.summary(loan, t) | plan_offer(loan, t)  # the strategy's bounds (borrower_plans)
        return page(
            "account.html",
            locale,
            status,
            heading=t("owed_title"),
            base=f"/l/{token}",
            csrf_token=csrf_of(session),
            can_pay=services.payments is not None,
            **({"errors": {}, "form": {}, "active": None} | shown | values),
        )

    @app.post("/l/{token}/code")
    async def send_code(request: Request, token: str) -> Response:
        found = await opened(request, token)
        if not isinstance(found, tuple):
            return found
        link, channel, locale = found
        t = texts_for(locale)
        delivery = await link_delivery(services.pool, link)
        assert delivery is not None  # opened() checked it
        issued = await issue_code(services.pool, link, delivery.recipient, settings)
        if issued.code is None:
            return verify_page(token, channel, locale, 429, problem=t(f"limit_{issued.refused}"))
        try:
            await deliver_code(link, delivery.channel, delivery.recipient, locale, issued.code)
        except (ApplicationError, OSError, RuntimeError) as error:
            log.warning("borrower_code_not_sent", loan_id=link.loan_id, error=type(error).__name__)
            return verify_page(token, channel, locale, 503, problem=t("send_failed"))
        log.info("borrower_code_sent", loan_id=link.loan_id, channel=delivery.channel)
        return verify_page(token, channel, locale, notice=t("code_sent"), sent=True)

    async def deliver_code(link: Link, channel: str, recipient: str, locale: str, code: str) -> None:
        if services.channel is None:
            raise RuntimeError("no channel configured for codes")
        text = CODE_TEXT["zh-CN" if locale.startswith("zh") else "en"].format(code=code)
        key = hashlib.sha256(code.encode() + link.token_hash).hexdigest()[:32]
        # Sent through the channel, not the outbox: the outbox keeps bodies, and a code must not be kept.
        await services.channel.deliver(
            RenderedMessage(
                idempotency_key=f"borrower-code:{key}",
                loan_id=link.loan_id,
                step_key="borrower:code",
                channel=channel,  # type: ignore[arg-type]
                template="borrower_code",
                locale=locale,
                recipient=recipient,
                subject=texts_for(locale)("verify_title") if channel == "email" else None,
                body=text,
            )
        )

    @app.post("/l/{token}/verify")
    async def verify(request: Request, token: str) -> Response:
        found = await opened(request, token)
        if not isinstance(found, tuple):
            return found
        link, channel, locale = found
        t = texts_for(locale)
        form = await request.form()
        result = await check_code(services.pool, link, str(form.get("code", "")), settings)
        if result != "ok":
            log.info("borrower_code_refused", loan_id=link.loan_id, result=result)
            return verify_page(token, channel, locale, 422, code_error=t(f"code_{result}"))
        session = await open_session(services.pool, link, settings)
        log.info("borrower_verified", loan_id=link.loan_id)
        response = RedirectResponse(f"/l/{token}", status_code=303)
        response.set_cookie(
            COOKIE,
            session,
            max_age=settings.session_minutes * 60,
            path=f"/l/{token}",
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookies,
        )
        return response

    @app.post("/l/{token}/pay")
    async def pay(request: Request, token: str) -> Response:
        checked = await session_of(request, token)
        if not isinstance(checked, tuple):
            return checked
        link, locale, session, form = checked
        t = texts_for(locale)
        if services.payments is None:
            return await account_page(link, token, locale, session, status=503, notice=t("pay_unavailable"))
        loan = await services.starter.status(link.loan_id)
        amount = minor_units(form.get("amount", ""), loan.currency)
        if amount is None:
            return await account_page(
                link,
                token,
                locale,
                session,
                status=422,
                errors={"amount": t("number")},
                active="pay",
                form=form,
            )
        back = str(request.url_for("show", token=token)) + "?paid=1"
        try:
            url = await services.payments.start_checkout(link.loan_id, amount, loan.currency, back)
        except InvalidRequest as refused:
            reason = "; ".join(message for _, message in refused.problems)
            errors = {"amount": t("refused", reason=reason)}
            return await account_page(
                link, token, locale, session, status=422, errors=errors, active="pay", form=form
            )
        return RedirectResponse(url, status_code=303)

    @app.post("/l/{token}/{action}")
    async def act(request: Request, token: str, action: str) -> Response:
        if action not in ACTIONS:
            return invalid(request)
        checked = await session_of(request, token)
        if not isinstance(checked, tuple):
            return checked
        link, locale, session, form = checked
        t = texts_for(locale)
        try:
            loan = await services.starter.status(link.loan_id)
            outcome = await run(action, link.loan_id, loan, form, t)
        except (UnknownLoan, CollectionClosed):
            return ended(locale)
        log.info("borrower_action", loan_id=link.loan_id, action=action, accepted=outcome.ok is not None)
        if outcome.ok is None:
            return await account_page(
                link, token, locale, session, status=422, errors=outcome.errors, active=action, form=form
            )
        return await account_page(link, token, locale, session, notice=t(outcome.ok, **outcome.values))

    async def run(action: str, loan_id: str, loan: Any, form: dict[str, str], t: Any) -> Outcome:
        if action == "promise":
            return await actions.promise(loan_id, loan, form, t)
        if action == "plan":
            return await actions.plan(loan_id, loan, form, t)
        if action == "settle":
            return await actions.settle(loan_id, loan, form, t)
        if action == "dispute":
            return await actions.dispute(loan_id, form, t)
        if action == "hardship":
            return await actions.hardship(loan_id, loan, form, t)
        if action == "optout":
            return await actions.opt_out(loan_id, form, t)
        if action == "hours":
            return await actions.hours(loan_id, form, t)
        return await actions.callback(loan_id, loan)

    async def session_of(request: Request, token: str) -> tuple[Link, str, str, dict[str, str]] | Response:
        """The link, locale, session and form of a verified, same-origin post; else the page to show."""
        found = await opened(request, token)
        if not isinstance(found, tuple):
            return found
        link, channel, locale = found
        session = request.cookies.get(COOKIE) or ""
        form = {k: str(v) for k, v in (await request.form()).items()}
        if not await session_valid(services.pool, link, session) or form.get("csrf") != csrf_of(session):
            return verify_page(token, channel, locale, 403)
        return link, locale, session, form

    return app


def csrf_of(session: str) -> str:
    """The forms' token: derived from the HttpOnly session id another site can neither read nor set."""
    return hashlib.sha256(b"borrower-csrf\0" + session.encode()).hexdigest()
