"""A scored file's table: the input columns plus prediction, probability and error columns, the
same for batch jobs, the CLI and Dask partitions."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def scored_table(inputs: Any, result: Any, malformed: Mapping[int, str] | None = None) -> Any:
    """The input columns (an Arrow table) plus prediction, probability and error columns, from
    a ScoreResult or a JSON score response (the CLI's remote path), as an Arrow table."""
    import pyarrow as pa

    n = inputs.num_rows
    if isinstance(result, dict):
        labels = np.empty(n, dtype=object)
        labels[:] = result["predictions"]
        classes = result.get("classes")
        rows = result.get("probabilities")
        probs = None
        if rows is not None and classes:
            probs = np.array([r if r is not None else [np.nan] * len(classes) for r in rows],
                             dtype=np.float64).reshape(n, len(classes))
        errors = [(e["row"], e.get("column"), e["message"]) for e in result.get("errors", [])
                  if "row" in e]
    else:
        labels, probs, classes = result.label_column(), result.probability_columns(), \
            result.classes
        errors = [(e.row, e.column, e.message) for e in result.errors if e.row is not None]
    problems = row_problems(errors)
    for row, message in (malformed or {}).items():
        problems[row] = message
        labels[row] = None
        if probs is not None:
            probs[row] = np.nan
    error = np.full(n, "", dtype=object)
    for row, text in problems.items():
        error[row] = text
    names = list(inputs.column_names) + ["prediction"]
    arrays = list(inputs.columns) + [_label_array(labels)]
    if probs is not None and classes:
        for j, cls in enumerate(classes):
            names.append(f"probability_{cls}")
            arrays.append(pa.array(probs[:, j], from_pandas=True))
    names.append("error")
    arrays.append(pa.array(error, type=pa.string()))
    return pa.Table.from_arrays(arrays, names=names)


def row_problems(errors: Any) -> dict[int, str]:
    """Per-row error text for an output's error column: "column: message", joined by "; "."""
    problems: dict[int, str] = {}
    for row, column, message in errors:
        text = f"{column}: {message}" if column else message
        problems[row] = f"{problems[row]}; {text}" if row in problems else text
    return problems


def failed_rows(table: Any) -> int:
    """Rows of a scored Arrow table with something in their error column."""
    import pyarrow.compute as pc

    return int(pc.sum(pc.not_equal(table.column("error"), "")).as_py() or 0)


def _label_array(labels: np.ndarray) -> Any:
    import pyarrow as pa

    try:
        return pa.array(labels, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in labels], type=pa.string())
