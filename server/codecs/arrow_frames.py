"""Arrow tables to DataFrames and back, as the file reader and the file writer both need them.

Arrow is how chunks travel (cheap to slice, written without conversion); a DataFrame is what
XLSX output and value-by-value work need. Values that do not fit one Arrow type become text.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def text_frame(table: Any) -> pd.DataFrame:
    """An Arrow table as a DataFrame of object columns (values as Python objects)."""
    return pd.DataFrame({name: np.asarray(table.column(name).to_pylist(), dtype=object)
                         if table.num_rows else np.empty(0, dtype=object)
                         for name in table.column_names}, columns=table.column_names)


def arrow_table(frame: pd.DataFrame) -> Any:
    """A chunk as an Arrow table; object columns holding mixed kinds become text."""
    import pyarrow as pa

    arrays, names = [], []
    for name in frame.columns:
        column = frame[name]
        try:
            array = pa.array(column, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            array = pa.array([None if is_na(v) else str(v) for v in column], type=pa.string())
        arrays.append(array)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def is_na(value: object) -> bool:
    """pd.isna for one value of any kind (a list or an object that pandas cannot test: False)."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
