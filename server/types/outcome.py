"""One recorded actual outcome, as every client format is decoded into before it is joined."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """An actual value for a prediction id or a business key, at a time (None: when received).
    ``problem``: what the decoder found wrong with the row (answered per row, never raised)."""

    row: int
    actual: Any
    prediction_id: str | None = None
    key: str | None = None
    time: datetime | None = None
    problem: str = ""
