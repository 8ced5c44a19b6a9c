"""One thing wrong with the input, by row and column.

Codecs find them while decoding, the scoring core while coercing and predicting, results carry them
and errors render them: every layer uses the type, so it lives at the bottom.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FieldError:
    """One thing wrong with the input: which row (0-based) and column, and what."""

    message: str
    row: int | None = None
    column: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.row is not None:
            out["row"] = self.row
        if self.column is not None:
            out["column"] = self.column
        return out
