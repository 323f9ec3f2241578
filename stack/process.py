"""Leaving the process once its work is done."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


def exit_process(code: int) -> NoReturn:
    """Flush and exit without interpreter finalization.

    The Temporal SDK's Rust threads can outlive the event loop; CPython tearing down under them aborts the
    process now and then ("Fatal Python error: PyGILState_Release", exit 134 or -11; temporalio/sdk-python
    issue 300, open). Everything that matters is closed before this is called, so skipping finalization
    loses nothing and the exit code is the one we mean.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
