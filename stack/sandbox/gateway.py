"""A provider stand-in over HTTP: accepts JSON POSTs once per Idempotency-Key, logs them, fails on request.

The order a request goes through is the order a real provider's would: authentication, then (sandbox
only) a failure it was told to simulate, then the idempotency replay (same key: the first answer again,
nothing logged), then the recipient checks, then acceptance (logged as one JSON line).

Telling it to fail, for tests and demos:
- `X-Sandbox-Fail: 503` header or `?fail=503` on the URL: that request gets HTTP 503 (any 4xx/5xx status);
- `gateway.fail_next(2, status=503)` in the same process, or `POST /sandbox/fail-next?count=2&status=503`:
  the next two requests get it, whatever they are;
- recipients ending in `0000` are refused for good (the channel's own "no such recipient" answer).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web

from stack.sandbox.common import HOST, HttpSandbox, JsonLines, now_iso

INVALID_SUFFIX = "0000"


def error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


class FailureSwitch:
    """Simulated provider trouble for tests and demos: a `?fail=503` query or `X-Sandbox-Fail` header fails
    that request; `fail_next(count, status)` (or POST .../sandbox/fail-next) fails the next ones."""

    _failures: list[int]

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        self._failures.extend([status] * count)

    def _simulated_failure(self, request: web.Request) -> int | None:
        for flag in (request.headers.get("X-Sandbox-Fail"), request.query.get("fail")):
            if flag and flag.isdigit() and 400 <= int(flag) < 600:
                return int(flag)
        if self._failures:
            return self._failures.pop(0)
        return None

    async def _fail_next(self, request: web.Request) -> web.Response:
        try:
            count = int(request.query.get("count", "1"))
            status = int(request.query.get("status", "503"))
        except ValueError:
            return error(400, "invalid_request", "count and status must be integers")
        if not (0 <= count <= 1000 and 400 <= status < 600):
            return error(400, "invalid_request", "count 0..1000, status 400..599")
        self.fail_next(count, status)
        return web.json_response({"failing_next": len(self._failures), "status": status})


class IdempotentGateway(FailureSwitch, HttpSandbox):
    channel: ClassVar[str]
    path: ClassVar[str]
    id_prefix: ClassVar[str]

    def __init__(self, log_file: Path, *, host: str = HOST, port: int = 0, setting: str) -> None:
        super().__init__(host=host, port=port, setting=setting)
        self.log = JsonLines(log_file)
        self._answers: dict[str, dict[str, Any]] = {}
        self._failures: list[int] = []
        self.requests = 0  # every POST that reached the gateway, failed ones included

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def entries(self) -> list[dict[str, Any]]:
        return self.log.read()

    async def start(self) -> None:
        # Keys accepted in an earlier run stay known: a retry after a restart is still a replay.
        self._answers = {
            str(e["idempotency_key"]): {"id": e["id"], "status": "accepted"}
            for e in self.log.read()
            if "idempotency_key" in e and "id" in e
        }
        await super().start()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(self.path, self._accept),
            web.get(self.path, self._list),
            web.post("/sandbox/fail-next", self._fail_next),
        ]

    # Hooks for the channel -------------------------------------------------------------------------------

    def authorize(self, request: web.Request, body: bytes) -> web.Response | None:
        return None

    def refuse(self, payload: dict[str, Any]) -> web.Response | None:
        """The channel's own checks of the payload; None when it is acceptable."""
        return None

    def record(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The fields of an accepted payload that go into the log."""
        return payload

    # Handlers ---------------------------------------------------------------------------------------------

    async def _accept(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        refused = self.authorize(request, body)
        if refused is not None:
            return refused
        simulated = self._simulated_failure(request)
        if simulated is not None:
            return error(
                simulated, "sandbox_failure", "failure simulated by the sandbox", **{"Retry-After": "1"}
            )
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return error(400, "missing_idempotency_key", "the Idempotency-Key header is required")
        try:
            payload = json.loads(body)
        except ValueError:
            return error(400, "invalid_json", "the body must be a JSON object")
        if not isinstance(payload, dict):
            return error(400, "invalid_json", "the body must be a JSON object")
        if payload.get("idempotency_key", key) != key:
            return error(400, "idempotency_key_mismatch", "body idempotency_key differs from the header")
        if key in self._answers:
            return web.json_response(self._answers[key], headers={"Idempotent-Replayed": "true"})
        refused = self.refuse(payload)
        if refused is not None:
            return refused
        return self._accepted(key, payload)

    def _accepted(self, key: str, payload: dict[str, Any]) -> web.Response:
        # No await between the replay check and here: two concurrent requests with one key log it once.
        answer = {"id": f"{self.id_prefix}_{secrets.token_hex(8)}", "status": "accepted"}
        entry = {"received_at": now_iso(), "id": answer["id"], "idempotency_key": key, **self.record(payload)}
        self.log.append(entry)
        self._answers[key] = answer
        return web.json_response(answer)

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response(self.entries(), dumps=lambda v: json.dumps(v, ensure_ascii=False, indent=1))
