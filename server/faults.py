"""Named fault points for crash tests.

``SCOREBRIDGE_FAULTS=promote.before_commit`` makes the process kill itself with SIGKILL when it
reaches that point, so tests can prove that a crash at the worst moment leaves a consistent registry.
Unset (always, outside tests), a fault point costs one dictionary lookup.
"""
from __future__ import annotations

import os
import signal


def point(name: str) -> None:
    faults = os.environ.get("SCOREBRIDGE_FAULTS")
    if faults and name in faults.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
