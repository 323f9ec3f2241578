"""make run's borrower page: a busy port is an error naming its setting; the dev link secret is kept, so the
links of messages already sent still open after a restart."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fastapi import FastAPI

from borrower.serve import dev_link_secret, serve_app
from stack.embedded import EmbeddedServerError


async def test_a_busy_port_names_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(EmbeddedServerError, match="OVERDUE_BORROWER_PORT"):
            await serve_app(FastAPI(), "127.0.0.1", taken.getsockname()[1])


def test_the_dev_link_secret_is_kept_and_private(tmp_path: Path) -> None:
    first = dev_link_secret(tmp_path)
    assert len(first) >= 32 and dev_link_secret(tmp_path) == first
    assert (tmp_path / "borrower-link-secret").stat().st_mode & 0o077 == 0
