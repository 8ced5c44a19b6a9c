"""Reading tabular files (CSV, XLSX, Parquet) for samples, holdout sets and local scoring."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, Iterator

import pandas as pd

from ..errors import InvalidInput, MalformedRequest
from .safe_cells import safe_cell
from .table import RawTable

FORMATS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".parquet": "parquet", ".pq": "parquet"}


def file_format(name: str) -> str:
    fmt = FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        raise InvalidInput(f"unsupported file type {Path(name).suffix or '(none)'!r}; use .csv, "
                           ".xlsx or .parquet")
    return fmt


def read_frame(source: str | Path | IO[bytes], name: str | None = None,
               max_rows: int | None = None) -> pd.DataFrame:
    """A whole (small) table: registration samples and holdout sets."""
    fmt = file_format(name or str(source))
    try:
        if fmt == "csv":
            return pd.read_csv(source, nrows=max_rows)
        if fmt == "xlsx":
            return pd.read_excel(source, engine="openpyxl", nrows=max_rows)
        frame = pd.read_parquet(source)
        return frame.head(max_rows) if max_rows else frame
    except (ValueError, UnicodeDecodeError, OSError, KeyError) as exc:
        label = name or Path(str(source)).name
        raise MalformedRequest(f"{label} could not be read as {fmt} ({type(exc).__name__})") \
            from None


def iter_chunks(path: Path, chunk_rows: int = 50_000) -> Iterator[pd.DataFrame]:
    """A table in chunks, so files larger than memory can be scored; values stay as read."""
    fmt = file_format(path.name)
    if fmt == "csv":
        yield from pd.read_csv(path, chunksize=chunk_rows, dtype=object, keep_default_na=False)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    else:
        frame = pd.read_excel(path, engine="openpyxl", dtype=object)
        for start in range(0, len(frame), chunk_rows):
            yield frame.iloc[start:start + chunk_rows]


def count_rows(path: Path) -> int | None:
    """Rows in a file when cheap to know (for progress bars)."""
    fmt = file_format(path.name)
    if fmt == "csv":
        with open(path, "rb") as fh:
            return max(sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
                       - 1, 0)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return None


def frame_to_table(frame: pd.DataFrame) -> RawTable:
    """A DataFrame read from a file as the neutral table; NaN cells become missing values."""
    columns = [frame[name].astype(object).where(frame[name].notna(), None).tolist()
               for name in frame.columns]
    return RawTable(names=[str(c) for c in frame.columns], columns=columns, n_rows=len(frame))


def scored_frame(frame: pd.DataFrame, response: dict) -> pd.DataFrame:
    """The input columns plus prediction, probability and error columns from a score response."""
    out = frame.reset_index(drop=True).copy()
    out["prediction"] = response["predictions"]
    classes = response.get("classes")
    probs = response.get("probabilities")
    if probs is not None and classes:
        for j, cls in enumerate(classes):
            out[f"probability_{cls}"] = [p[j] if p is not None else None for p in probs]
    problems: dict[int, list[str]] = {}
    for err in response.get("errors", []):
        if "row" in err:
            text = f"{err['column']}: {err['message']}" if err.get("column") else err["message"]
            problems.setdefault(err["row"], []).append(text)
    out["error"] = ["; ".join(problems.get(i, [])) for i in range(len(out))]
    return out


class TableWriter:
    """Writes chunks of a result table to CSV, XLSX or Parquet under a temporary name and renames
    it into place only on :meth:`close`, so a partial output never looks complete. Text cells are
    neutralised against formula injection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = file_format(path.name)
        self.tmp = path.with_name(f".{path.name}.partial")
        self._writer = None
        self._book = None
        self._sheet = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        safe = frame.copy()
        for col in safe.columns:
            if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
                safe[col] = safe[col].map(safe_cell)
        if self.format == "csv":
            safe.to_csv(self.tmp, mode="a", header=self.rows == 0, index=False,
                        lineterminator="\r\n")
        elif self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(safe, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.tmp, table.schema)
            self._writer.write_table(table.cast(self._writer.schema))
        else:
            from openpyxl import Workbook

            if self._book is None:
                self._book = Workbook(write_only=True)
                self._sheet = self._book.create_sheet("scored")
                self._sheet.append([str(c) for c in safe.columns])
            for row in safe.itertuples(index=False):
                self._sheet.append([None if _is_na(v) else v for v in row])
        self.rows += len(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._book is not None:
            self._book.save(self.tmp)
        if not self.tmp.exists():
            self.tmp.touch()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)


def _is_na(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """A frame as Parquet bytes (types kept), for samples stored with a version."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def frame_from_parquet(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data))
