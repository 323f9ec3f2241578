"""The admins' users page (/admin/users): the changes of `python -m admin.users`, from the browser.

Each change goes through admin/accounts.py, so it is audited like the command's (actor 'admin:<name>') and
ends sessions the same way. An admin cannot deactivate, demote or log out everywhere themselves here: a slip
of the mouse would lock the last admin out (the command can still do it). A reset shows the generated
password once, on the answer page, and stores it nowhere.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from admin import accounts
from admin.users import ROLES, User, UserError, generated_password
from admin.web import Forbidden, checked_form, render, require, services_of

router = APIRouter()
Admin = Annotated[User, Depends(require("admin"))]
ACTIONS = (
    "deactivate",
    "reactivate",
    "logout-everywhere",
    "reset-password",
    "set-role",
    "set-pools",
    "disable-totp",
)
SELF_REFUSED = ("deactivate", "logout-everywhere", "set-role")


async def _page(request: Request, user: User, **extra: object) -> Response:
    context = {
        "user": user,
        "accounts": await accounts.list_accounts(services_of(request).pool),
        "roles": ROLES,
        "error": None,
        "notice": None,
        "new_password": None,
        **extra,
    }
    return render(request, "users.html", context, status_code=400 if extra.get("error") else 200)


@router.get("/admin/users", response_class=HTMLResponse)
async def users_page(request: Request, user: Admin) -> Response:
    return await _page(request, user)


@router.post("/admin/users", response_class=HTMLResponse)
async def change_user(request: Request, user: Admin) -> Response:
    form = await checked_form(request)
    action = str(form.get("action", ""))
    username = str(form.get("username", ""))
    if action not in ACTIONS:
        raise Forbidden("Unknown action.")
    if action in SELF_REFUSED and username == user.username:
        return await _page(request, user, error="Use the command line to change your own account this way.")
    pool = services_of(request).pool
    actor = f"admin:{user.username}"
    new_password = None
    try:
        if action in ("deactivate", "reactivate"):
            await accounts.set_active(pool, username, action == "reactivate", actor=actor)
        elif action == "logout-everywhere":
            await accounts.logout_everywhere(pool, username, actor=actor)
        elif action == "reset-password":
            new_password = generated_password(username)
            await accounts.reset_password(pool, username, new_password, actor=actor)
        elif action == "set-role":
            await accounts.set_role(pool, username, str(form.get("role", "")), actor=actor)
        elif action == "set-pools":
            pools = [name for name in str(form.get("pools", "")).replace(",", " ").split() if name]
            await accounts.set_pools(pool, username, pools, actor=actor)
        else:
            await accounts.disable_totp(pool, username, actor=actor)
    except UserError as error:
        return await _page(request, user, error=str(error))
    if new_password is not None:
        return await _page(request, user, notice=username, new_password=new_password)
    return RedirectResponse("/admin/users", status_code=303)
