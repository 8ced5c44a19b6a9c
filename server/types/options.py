"""What a caller asks for besides the rows: shared by every codec, the scorer and batch jobs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

ErrorMode = Literal["raise", "row"]
# how many reasons per row: a count, or "all" (every input's contribution); None: no explanations
Explain = Union[int, Literal["all"], None]


@dataclass(frozen=True)
class ScoreOptions:
    """What the caller asked for besides the rows."""

    probabilities: bool = True
    errors: ErrorMode = "raise"
    explain: Explain = None
