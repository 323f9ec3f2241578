"""The product end to end, assembled the way `make run` assembles it.

The embedded Temporal dev server (stack.embedded, own ports and state dir), the embedded PostgreSQL (own
pgdata), `python worker.py` as a separate process on a uuid task queue, and the CLI as a user types it:
start a loan from a file, pay it in full, and read outcome "paid" from `status --json`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

from privacy.keyring import KeyRing
from stack.embedded import EmbeddedPostgres, TemporalDevServer, free_port
from stack.migrate import apply_migrations
from stack.settings import ROOT
from tests.authority.keys import SIGNING_KEYS_JSON, TEST_RING

AMOUNT = 123_450  # CNY 1,234.50, the whole debt: a payment of it pays the loan off


async def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


async def test_start_pay_status_through_the_cli_against_the_embedded_stack(tmp_path: Path) -> None:
    temporal = TemporalDevServer(tmp_path / "state", port=free_port(), headless=True)
    # pgdata outside pytest's tmp dirs (see tests/test_stack_embedded.py: pg_base).
    pg_base = Path(tempfile.mkdtemp(prefix="overdue-e2e-pg-"))
    postgres = EmbeddedPostgres(pg_base / "pgdata")
    await asyncio.gather(temporal.start(), postgres.start())
    worker: asyncio.subprocess.Process | None = None
    worker_log = tmp_path / "worker.log"
    try:
        await apply_migrations(postgres.url)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OVERDUE_", "TEMPORAL_")) and key != "DATABASE_URL"
        }
        env |= {
            "TEMPORAL_ADDRESS": temporal.target,
            "OVERDUE_TASK_QUEUE": f"e2e-{uuid.uuid4().hex}",
            "OVERDUE_STATE_DIR": str(tmp_path / "state"),
            "PYTHONUNBUFFERED": "1",
            # Payloads are encrypted (privacy/): the CLI and the worker share a key ring and the database
            # that holds the loan's data key.
            "OVERDUE_CODEC_KEYS": KeyRing.generate().to_json(),
            "DATABASE_URL": postgres.url,
            # Payments are signed (authority/): the CLI signs as servicing, the worker trusts the test keys.
            "OVERDUE_SIGNING_KEY": SIGNING_KEYS_JSON,
            "OVERDUE_TRUSTED_KEYS": json.dumps(TEST_RING.to_json()),
        }
        with worker_log.open("wb") as log:
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "worker.py",
                cwd=ROOT,
                env=env | {"DATABASE_URL": postgres.url},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

        loan_id = f"E2E-{uuid.uuid4().hex[:10]}"
        loan = {
            "loan_id": loan_id,
            "borrower": {"name": "Test Borrower", "phone": "+8613800138000", "email": "t@example.com"},
            "currency": "CNY",
            "amount_overdue_minor": AMOUNT,
            "principal_outstanding_minor": AMOUNT,
            "overdue_since": (date.today() - timedelta(days=2)).isoformat(),
        }
        loan_file = tmp_path / "loan.json"
        loan_file.write_text(json.dumps(loan))

        code, out, err = await _run(env, "-m", "starter", "start", "--file", str(loan_file), "--no-progress")
        assert code == 0, f"start failed: {out}\n{err}\nworker:\n{_tail(worker_log)}"
        assert "1 started" in out, out

        code, out, err = await _run(
            env, "-m", "starter", "pay", loan_id, "--amount", str(AMOUNT), "--payment-id", "E2E-PAY-1"
        )
        assert code == 0, f"pay failed: {out}\n{err}\nworker:\n{_tail(worker_log)}"

        deadline = time.monotonic() + 60
        status: dict[str, object] = {}
        while time.monotonic() < deadline:
            code, out, err = await _run(env, "-m", "starter", "status", loan_id, "--json")
            assert code == 0, f"status failed: {out}\n{err}\nworker:\n{_tail(worker_log)}"
            status = json.loads(out)
            if status.get("outcome") == "paid":
                break
            await asyncio.sleep(0.5)
        assert status.get("outcome") == "paid", f"{status}\nworker:\n{_tail(worker_log)}"
        assert status["paid_total_minor"] == AMOUNT

        # The worker shuts down gracefully on SIGTERM.
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 30) == 0, _tail(worker_log)
        worker = None
    finally:
        if worker is not None and worker.returncode is None:
            worker.kill()
            await worker.wait()
        await temporal.stop()
        await postgres.stop()
        shutil.rmtree(pg_base, ignore_errors=True)
