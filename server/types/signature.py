"""The one description of a model's inputs and outputs.

Every codec, the Excel template, the Power BI types, the OData metadata, drift monitoring and the
scoring core read :class:`Signature`; it is inferred once at registration
(:mod:`server.scoring.signature`) and stored with the version. It lives at the bottom because every
layer shares it: a type two layers share moves down, never sideways.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal

import numpy as np
import pandas as pd

ColumnType = Literal["number", "integer", "string", "boolean"]

@dataclass(frozen=True)
class Column:
    """One model input, in the order the model expects it."""

    name: str
    type: ColumnType
    categories: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    accepts_missing: bool = True
    accepts_unknown: bool | None = None

    @property
    def is_categorical(self) -> bool:
        return self.categories is not None


@dataclass(frozen=True)
class Output:
    """What the model returns: class labels (with probabilities) or a regression value."""

    kind: Literal["classification", "regression"]
    type: ColumnType
    classes: tuple[Any, ...] | None = None
    probabilities: bool = False


@dataclass(frozen=True)
class Signature:
    """A model's inputs in the order it expects them, and its output."""

    inputs: tuple[Column, ...]
    output: Output
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {c.name: i for i, c in enumerate(self.inputs)})

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def column(self, name: str) -> Column:
        return self.inputs[self.index[name]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [_drop_none(asdict(c)) for c in self.inputs],
            "output": _drop_none(asdict(self.output)),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Signature":
        inputs = []
        for raw in data["inputs"]:
            raw = dict(raw)
            if raw.get("categories") is not None:
                raw["categories"] = tuple(raw["categories"])
            inputs.append(Column(**raw))
        out = dict(data["output"])
        if out.get("classes") is not None:
            out["classes"] = tuple(out["classes"])
        return cls(inputs=tuple(inputs), output=Output(**out))

    def with_columns(self, columns: Iterable[Column]) -> "Signature":
        return Signature(inputs=tuple(columns), output=self.output)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def to_python(value: Any) -> Any:
    """numpy scalars to plain Python, so signatures and results serialise as JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def example_frame(signature: Signature, n_rows: int = 3) -> pd.DataFrame:
    """Plausible rows built from the signature alone, for smoke tests and templates."""
    data: dict[str, list[Any]] = {}
    for col in signature.inputs:
        if col.categories:
            data[col.name] = [col.categories[i % len(col.categories)] for i in range(n_rows)]
        elif col.type in ("number", "integer"):
            lo = col.minimum if col.minimum is not None else 0.0
            hi = col.maximum if col.maximum is not None else lo + 1.0
            points = np.linspace(lo, hi, n_rows + 2)[1:-1]
            data[col.name] = [int(round(p)) if col.type == "integer" else float(p) for p in points]
        elif col.type == "boolean":
            data[col.name] = [bool(i % 2) for i in range(n_rows)]
        else:
            data[col.name] = ["" for _ in range(n_rows)]
    return pd.DataFrame(data, columns=signature.names)
