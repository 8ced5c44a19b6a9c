"""Per-row explanations as the scoring core computes them and every codec writes them.

Kept as arrays (one row per scored row, one column per input) so that batch outputs and 1,000-row
requests do not build Python objects per cell; the per-row reasons are made on demand.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

NO_EFFECT = 1e-12
OUTPUT_WORDS = {"log-odds": "probability", "probability": "probability",
                "margin": "score", "prediction": "prediction"}


@dataclass
class Explanation:
    """Contributions of each input column, for the scored rows of one result.

    ``base[i] + contributions[i].sum()`` equals the model's raw output for scored row ``i`` in
    the space ``output`` names (log-odds, margin, probability or prediction); ``explained`` is
    the class each row's output belongs to (classifiers) or None (regressors).
    """

    columns: list[str]
    base: np.ndarray                 # (rows,)
    contributions: np.ndarray        # (rows, columns)
    values: list[list[Any]]          # the rows' input values, as the model saw them
    output: str                      # "log-odds" | "margin" | "probability" | "prediction"
    method: str                      # how they were computed, e.g. "tree SHAP (exact)"
    explained: list[Any] | None = None

    def take(self, lo: int, hi: int) -> "Explanation":
        """Rows ``lo`` to ``hi`` (a part of a stacked call)."""
        return Explanation(self.columns, self.base[lo:hi], self.contributions[lo:hi],
                           self.values[lo:hi], self.output, self.method,
                           self.explained[lo:hi] if self.explained is not None else None)

    def about(self) -> dict[str, Any]:
        """What the numbers mean, said once per response."""
        return {"output": self.output, "method": self.method,
                "additive": "base + sum(contributions) equals the model's raw output"}

    def reasons(self, i: int, k: int | None) -> list[dict[str, Any]]:
        """Row ``i``'s ``k`` strongest reasons (all when None), strongest first."""
        effects = self.contributions[i]
        order = np.argsort(-np.abs(effects), kind="stable")
        if k is not None:
            order = order[:k]
        target = self.explained[i] if self.explained is not None else None
        out = []
        for j in order.tolist():
            value, effect = self.values[i][j], float(effects[j])
            out.append({"column": self.columns[j], "value": value, "effect": effect,
                        "text": reason_text(self.columns[j], value, effect, self.output,
                                            target)})
        return out

    def row(self, i: int, k: int | None) -> dict[str, Any]:
        """Row ``i`` as the JSON response writes it."""
        out: dict[str, Any] = {"base": float(self.base[i]),
                               "contributions": dict(zip(self.columns,
                                                         self.contributions[i].tolist())),
                               "reasons": self.reasons(i, k)}
        if self.explained is not None:
            out["class"] = self.explained[i]
        return out

    def texts(self, k: int) -> list[list[str]]:
        """Each row's ``k`` reason phrases, padded with "" (the reason_1..k columns)."""
        out = []
        for i in range(len(self.base)):
            texts = [r["text"] for r in self.reasons(i, k)]
            out.append(texts + [""] * (k - len(texts)))
        return out


def reason_text(column: str, value: Any, effect: float, output: str, target: Any) -> str:
    """"contract = month-to-month raises the probability of yes"."""
    word = OUTPUT_WORDS.get(output, "prediction")
    what = f"the {word} of {target}" if target is not None else f"the {word}"
    # rounding noise (an imputed value's ~1e-16) is no effect
    verb = "raises" if effect > NO_EFFECT else "lowers" if effect < -NO_EFFECT else \
        "does not change"
    return f"{column} = {format_value(value)} {verb} {what}"


def format_value(value: Any) -> str:
    """An input value as a reason shows it: numbers to 6 significant digits, blanks as missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def reason_count(explain: Any, n_columns: int) -> int | None:
    """The number of reasons an ``explain`` option asks for (None: all)."""
    return None if explain == "all" else min(int(explain), n_columns)


def per_row(explanation: Explanation | None, positions: Sequence[int], n_rows: int,
            k: int | None) -> list[dict[str, Any] | None]:
    """One entry per input row (None where a row was not scored)."""
    out: list[dict[str, Any] | None] = [None] * n_rows
    if explanation is not None:
        for j, i in enumerate(positions):
            out[int(i)] = explanation.row(j, k)
    return out
