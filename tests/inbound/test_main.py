"""`python -m inbound` refuses to start without what it needs, naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys

from stack.settings import ROOT


def _run(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OVERDUE_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "inbound"],
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_a_database_it_says_so() -> None:
    done = _run()
    assert done.returncode == 2 and "DATABASE_URL" in done.stderr


def test_without_any_provider_credential_it_names_the_settings() -> None:
    done = _run(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    assert done.returncode == 2 and "OVERDUE_INBOUND_*_SECRET" in done.stderr
