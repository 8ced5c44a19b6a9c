"""What a caller asks for besides the rows: shared by every codec, the scorer and batch jobs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ErrorMode = Literal["raise", "row"]


@dataclass(frozen=True)
class ScoreOptions:
    """What the caller asked for besides the rows."""

    probabilities: bool = True
    errors: ErrorMode = "raise"
