"""Signed actor assertions: who acts on a loan, with which role, proven to the loan's workflow.

    signer = Signer.from_settings()                       # this process's signing key(s)
    token = signer.mint(Actor("wang.boss", "supervisor"), "collection-L-1", "hold_stage", request)
    handle.execute_update("hold_stage", args=[request, token])

    # in the workflow (trust ring installed by the worker: authority.trust.install)
    assertion = verify(token, trust.installed(), workflow_id=..., action=..., request=..., now=workflow.now())

See `authority.tokens` for the token format and README "Who may act".
"""

from authority.keys import ROLES, KeyFileError, Role, SigningKey, TrustedKey, TrustedKeys
from authority.settings import AuthoritySettings
from authority.signer import Actor, CannotAct, Signer
from authority.tokens import Assertion, Refused, digest, mint, verify

__all__ = [
    "ROLES",
    "Actor",
    "Assertion",
    "AuthoritySettings",
    "CannotAct",
    "KeyFileError",
    "Refused",
    "Role",
    "Signer",
    "SigningKey",
    "TrustedKey",
    "TrustedKeys",
    "digest",
    "mint",
    "verify",
]
