"""A scored file's table: the input columns plus prediction, probability and error columns, the
same for batch jobs, the CLI and Dask partitions."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..types.explanation import reason_count


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
    if not isinstance(result, dict) and result.explanation is not None:
        extra, columns = explanation_columns(result, malformed)
        names += extra
        arrays += [pa.array(c, type=pa.string() if n.startswith("reason_") else pa.float64(),
                            from_pandas=True) for n, c in zip(extra, columns)]
    names.append("error")
    arrays.append(pa.array(error, type=pa.string()))
    return pa.Table.from_arrays(arrays, names=names)


def explanation_columns(result: Any, malformed: Mapping[int, str] | None = None,
                        ) -> tuple[list[str], list[list[Any]]]:
    """``reason_1..k`` (the rows' strongest reasons as phrases; "" where a row was not scored)
    and, for ``explain="all"``, ``contribution_<input>`` and ``contribution_base`` columns."""
    explanation = result.explanation
    k = reason_count(result.explain, len(explanation.columns)) or len(explanation.columns)
    n = result.n_rows
    positions = result.positions.tolist()
    skip = set(malformed or ())
    names = [f"reason_{j + 1}" for j in range(k)]
    columns: list[list[Any]] = [[""] * n for _ in range(k)]
    for row, texts in zip(positions, explanation.texts(k)):
        if row not in skip:
            for j, text in enumerate(texts):
                columns[j][row] = text
    if result.explain == "all":
        names += ["contribution_base"] + [f"contribution_{c}" for c in explanation.columns]
        values = np.full((n, len(explanation.columns) + 1), np.nan)
        values[positions, 0] = explanation.base
        values[positions, 1:] = explanation.contributions
        values[sorted(skip), :] = np.nan
        columns += [[None if v != v else v for v in values[:, j].tolist()]
                    for j in range(values.shape[1])]
    return names, columns


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
