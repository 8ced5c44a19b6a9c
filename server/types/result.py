"""The outcome of one scoring call, as every codec writes it and every caller reads it.

The scorer produces it, codecs (JSON, CSV, V2 tensors, batch files, workbooks) and jobs consume it:
it lives at the bottom so neither side imports the other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .explanation import Explanation
from .field_error import FieldError


@dataclass
class ScoreResult:
    """Predictions in input order; rows that could not be scored hold None and have errors.

    Outputs are kept as arrays (``labels`` and ``probs`` for the scored rows, at input positions
    ``positions``): codecs that write arrays (batch files, binary tensors) use them as they are;
    the per-row lists of :attr:`predictions` and :attr:`probabilities` are built on first use.
    """

    model: str
    version: int
    labels: Any
    probs: Any
    positions: Any
    classes: list[Any] | None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)
    n_rows: int = 0
    kind: str = "classification"
    model_failures: int = 0
    # contributions for the scored rows (in ``positions`` order), when the caller asked
    explanation: Explanation | None = None
    explain: Any = None     # the option that asked: a number of reasons or "all"
    # the rows as the model saw them, for the prediction log (not sent to clients)
    checked: Any = field(default=None, repr=False)
    scored: Any = field(default=None, repr=False)       # positions in checked rows that were scored
    # one id per input row (None where not scored) when the model tracks outcomes
    prediction_ids: list[str | None] | None = None

    @property
    def rows_scored(self) -> int:
        return self.n_rows - len({e.row for e in self.errors if e.row is not None})

    @property
    def frame(self) -> Any:
        return self.checked.frame if self.checked is not None else None

    @property
    def input_rows(self) -> Any:
        return self.checked.rows if self.checked is not None else None

    # cached by hand: functools.cached_property takes a lock on every first read in Python 3.11,
    # which thousands of one-row results (a spreadsheet batch) each pay
    @property
    def predictions(self) -> list[Any]:
        cached = self.__dict__.get("_predictions")
        if cached is None:
            cached = self.__dict__["_predictions"] = self._predictions()
        return cached

    @property
    def probabilities(self) -> list[list[float] | None] | None:
        if "_probabilities" not in self.__dict__:
            self.__dict__["_probabilities"] = self._probabilities()
        return self.__dict__["_probabilities"]

    def _predictions(self) -> list[Any]:
        if len(self.positions) == self.n_rows:  # every row scored: positions are 0 .. n-1
            return self.labels.tolist()
        out: list[Any] = [None] * self.n_rows
        for i, value in zip(self.positions.tolist(), self.labels.tolist()):
            out[i] = value
        return out

    def _probabilities(self) -> list[list[float] | None] | None:
        if self.probs is None:
            return None
        if len(self.positions) == self.n_rows:
            return self.probs.tolist()
        out: list[list[float] | None] = [None] * self.n_rows
        for i, p in zip(self.positions.tolist(), self.probs.tolist()):
            out[i] = p
        return out

    def label_column(self) -> np.ndarray:
        """One label per input row (None where not scored), as an object array."""
        out = np.full(self.n_rows, None, dtype=object)
        out[self.positions] = self.labels
        return out

    def probability_columns(self) -> np.ndarray | None:
        """Rows × classes (NaN where not scored)."""
        if self.probs is None:
            return None
        out = np.full((self.n_rows, self.probs.shape[1]), np.nan)
        out[self.positions] = self.probs
        return out
