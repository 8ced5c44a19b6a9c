"""Which tabular file formats we read and write, told by the file's extension."""
from __future__ import annotations

from pathlib import Path

from ..errors import InvalidInput

FORMATS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".parquet": "parquet", ".pq": "parquet"}


def file_format(name: str) -> str:
    fmt = FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        raise InvalidInput(f"unsupported file type {Path(name).suffix or '(none)'!r}; use .csv, "
                           ".xlsx or .parquet")
    return fmt
