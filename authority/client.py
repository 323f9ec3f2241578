"""A Temporal client interceptor that signs what a client sends, for programs that talk to loan workflows
through a plain Temporal client (the simulation, tests, a servicing integration of its own).

    client = Client(**{**client.config(), "interceptors": [SigningInterceptor(signer, actor_for)]})
    await handle.signal("payment", payment)   # goes out as args [payment, token]

`actor_for(name, request)` says who acts for an update or signal (None: sent unsigned, e.g. a query-like
signal no one acts for); `clock` gives the issuing time (a time-skipping server's own time in tests).
Calls that already pass a token (two arguments) are left alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from temporalio import client as temporal

from authority.signer import Actor, Signer

ActorFor = Callable[[str, Any], Actor | None]


class SigningInterceptor(temporal.Interceptor):
    def __init__(
        self,
        signer: Signer,
        actor_for: ActorFor,
        clock: Callable[[], Awaitable[datetime]] | None = None,
    ) -> None:
        self.signer = signer
        self.actor_for = actor_for
        self.clock = clock

    def intercept_client(self, next: temporal.OutboundInterceptor) -> temporal.OutboundInterceptor:
        return _Signing(next, self)

    async def sign(self, workflow_id: str, name: str, args: Any) -> list[Any]:
        args = list(args)
        if len(args) != 1:
            return args
        actor = self.actor_for(name, args[0])
        if actor is None:
            return args
        now = await self.clock() if self.clock else None
        return [args[0], self.signer.mint(actor, workflow_id, name, args[0], now=now)]


class _Signing(temporal.OutboundInterceptor):
    def __init__(self, next: temporal.OutboundInterceptor, signing: SigningInterceptor) -> None:
        super().__init__(next)
        self.signing = signing

    async def signal_workflow(self, input: temporal.SignalWorkflowInput) -> None:
        input.args = await self.signing.sign(input.id, input.signal, input.args)
        await super().signal_workflow(input)

    async def start_workflow_update(
        self, input: temporal.StartWorkflowUpdateInput
    ) -> temporal.WorkflowUpdateHandle[Any]:
        input.args = await self.signing.sign(input.id, input.update, input.args)
        return await super().start_workflow_update(input)


def named_actor(servicing: Actor) -> ActorFor:
    """Who acts, read off the request: its `approver` as a supervisor, its `collector` as a collector,
    else (payments, closes) `servicing`. For the simulation and tests, which play every role."""

    def actor_for(name: str, request: Any) -> Actor | None:
        approver = getattr(request, "approver", None)
        if isinstance(approver, str):
            return Actor(approver, "supervisor")
        collector = getattr(request, "collector", None)
        if isinstance(collector, str):
            return Actor(collector, "collector")
        return servicing

    return actor_for


def signing_client(client: temporal.Client, interceptor: SigningInterceptor) -> temporal.Client:
    """The same connection and converter, with every signal and update signed."""
    config = client.config()
    config["interceptors"] = [*config.get("interceptors", []), interceptor]
    return temporal.Client(**config)
