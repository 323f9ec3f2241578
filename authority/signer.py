"""Minting assertions for the people and services a process acts for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from authority.keys import Role, SigningKey
from authority.settings import AuthoritySettings
from authority.tokens import DEFAULT_TTL, mint


class CannotAct(ValueError):
    """This process holds no key that may assert this actor and role; nothing was sent."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a username (collector, supervisor, admin), an operator's identity, or a service name."""

    name: str
    role: Role


class Signer:
    """The signing keys of one process (usually one; `make run` holds the admin UI's and servicing's)."""

    def __init__(self, keys: Sequence[SigningKey], ttl: timedelta = DEFAULT_TTL) -> None:
        self.keys = list(keys)
        self.ttl = ttl

    @staticmethod
    def from_settings(
        settings: AuthoritySettings | None = None, dev_fallback: tuple[str, ...] = ()
    ) -> Signer:
        settings = settings or AuthoritySettings()
        return Signer(settings.signing_keys(dev_fallback), timedelta(seconds=settings.assertion_ttl_seconds))

    def own_actors(self) -> list[Actor]:
        """The actors keys bound to one identity act as (an operator, servicing), in key order."""
        return [Actor(k.identity, r) for k in self.keys if k.identity for r in sorted(k.roles)]

    def default_actor(self, roles: Sequence[Role]) -> Actor:
        """The first identity-bound actor of this process with one of `roles` (servicing for payments)."""
        for role in roles:
            for actor in self.own_actors():
                if actor.role == role:
                    return actor
        raise CannotAct(
            f"this process holds no key acting as {' or '.join(roles)} "
            "(set OVERDUE_SIGNING_KEY_FILES; see README 'Who may act')"
        )

    def key_for(self, actor: Actor) -> SigningKey:
        for key in self.keys:
            if actor.role in key.roles and key.identity in (None, actor.name):
                return key
        if not self.keys:
            raise CannotAct("this process has no signing key (set OVERDUE_SIGNING_KEY_FILES)")
        raise CannotAct(f"no signing key of this process may act as {actor.name} ({actor.role})")

    def mint(
        self,
        actor: Actor,
        workflow_id: str,
        action: str,
        request: BaseModel | Any,
        now: datetime | None = None,
    ) -> str:
        key = self.key_for(actor)
        return mint(
            key,
            actor=actor.name,
            role=actor.role,
            workflow_id=workflow_id,
            action=action,
            request=request,
            now=now,
            ttl=self.ttl,
        )
