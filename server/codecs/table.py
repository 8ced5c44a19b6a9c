"""Column-oriented input to a :class:`RawTable`, with the check that makes bad input a 400.

The table type lives in :mod:`server.types.table`; the codecs that accept columns (JSON
``columns``, TabPy, V2 tensors) share this one check because an error a client sees is a codec's
concern, not the type's.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..errors import MalformedRequest
from ..types.table import RawTable


def table_from_columns(data: dict[str, Sequence[Any]]) -> RawTable:
    """Column-oriented input; every column must have the same length."""
    lengths = {k: len(v) for k, v in data.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}: {n}" for k, n in list(lengths.items())[:10])
        raise MalformedRequest(f"columns have different lengths ({detail})")
    n = next(iter(lengths.values()), 0)
    return RawTable(names=[str(k) for k in data], columns=[list(v) for v in data.values()],
                    n_rows=n)
