"""Reading tabular files (CSV, XLSX, Parquet) for samples, holdout sets, batch jobs and local
scoring: whole (:func:`read_frame`) or in chunks of Arrow tables (:func:`iter_chunks`), with
malformed CSV rows kept as row errors rather than failing the file.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

import numpy as np
import pandas as pd

from ..errors import MalformedRequest
from ..types import FieldError, RawTable
from .arrow_frames import arrow_table, text_frame
from .file_formats import file_format

CSV_BLOCK_BYTES = 4 << 20
SNIFF_BYTES = 4 << 20


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


@dataclass
class Chunk:
    """Rows of an input file, values as read (an Arrow table for CSV and Parquet, a DataFrame
    for XLSX), and the lines that could not be split into columns (position in this chunk ->
    what was wrong); those positions hold empty cells."""

    table: Any = None
    frame_: pd.DataFrame | None = None
    malformed: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        if self.table is not None:
            return self.table.num_rows
        assert self.frame_ is not None  # a chunk holds a table or a frame
        return len(self.frame_)

    @property
    def frame(self) -> pd.DataFrame:
        if self.frame_ is None:
            self.frame_ = text_frame(self.table)
        return self.frame_

    def arrow(self) -> Any:
        """The input columns as an Arrow table (for writing them back out)."""
        if self.table is None:
            self.table = arrow_table(self.frame_)
        return self.table

    def raw(self) -> RawTable:
        """The neutral table the scoring core reads; Arrow columns stay Arrow columns."""
        if self.table is None:
            return frame_to_table(self.frame_, self.malformed)
        return RawTable(names=[str(c) for c in self.table.column_names],
                        columns=list(self.table.columns), n_rows=self.table.num_rows,
                        row_errors=_row_errors(self.malformed))


def iter_chunks(path: Path, chunk_rows: int = 50_000) -> Iterator[Chunk]:
    """A table in chunks of ``chunk_rows``, so files larger than memory can be scored."""
    fmt = file_format(path.name)
    if fmt == "csv":
        yield from _csv_chunks(path, chunk_rows)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield Chunk(pa.Table.from_batches([batch]))
    else:
        frame = pd.read_excel(path, engine="openpyxl", dtype=object)
        for start in range(0, len(frame), chunk_rows):
            yield Chunk(frame_=frame.iloc[start:start + chunk_rows].reset_index(drop=True))


def _csv_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM), or Windows-1252 for files that are not UTF-8: what Excel's
    plain "CSV (Comma delimited)" writes on Windows."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the sniffing boundary
            return "cp1252"
    return "utf8"


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """CSV read by Arrow's streaming reader, every value as text. A line with the wrong number
    of fields is not fatal: it becomes an empty row, at its place, with the reason."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    bad: list[tuple[int | None, str]] = []

    def invalid(row: Any) -> str:
        record = row.number - 2 if row.number is not None else None  # 1 is the header
        bad.append((record, f"line {'?' if row.number is None else row.number}: expected "
                            f"{row.expected_columns} fields, got {row.actual_columns}; the line "
                            "was not scored"))
        return "skip"

    encoding = _csv_encoding(path)
    with open(path, "rb") as fh:
        first = fh.readline().decode(encoding, errors="replace").lstrip("\ufeff")
    names = next(csv.reader(io.StringIO(first)), [])
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False,
                                      encoding=encoding),
        parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=invalid),
        convert_options=pcsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False,
            quoted_strings_can_be_null=False))
    merged = _Merger(bad)
    pending: list[Any] = []
    held = 0
    for batch in reader:
        pending.append(batch)
        held += batch.num_rows
        while held >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield merged.chunk(table.slice(0, chunk_rows))
            rest = table.slice(chunk_rows)
            pending, held = rest.to_batches(), rest.num_rows
    table = pa.Table.from_batches(pending, schema=reader.schema)
    if table.num_rows or bad:
        yield merged.chunk(table, last=True)


class _Merger:
    """Puts malformed lines back at their place among the good rows (by record number)."""

    def __init__(self, bad: list[tuple[int | None, str]]) -> None:
        self.bad = bad
        self.done = 0  # records (good and malformed) emitted so far

    def chunk(self, table: Any, last: bool = False) -> Chunk:
        good = table.num_rows
        taken: list[tuple[int | None, str]] = []
        self.bad.sort(key=lambda b: (b[0] is None, b[0] or 0))
        while self.bad and (last or (self.bad[0][0] is not None and
                                     self.bad[0][0] < self.done + good + len(taken))):
            taken.append(self.bad.pop(0))
        if not taken:
            self.done += good
            return Chunk(table)
        size = good + len(taken)
        positions = _slots([min(max((b[0] if b[0] is not None else size) - self.done, 0),
                                size - 1) for b in taken], size)
        index = np.full(size, -1, dtype=np.int64)
        is_bad = np.zeros(size, dtype=bool)
        is_bad[positions] = True
        index[~is_bad] = np.arange(good)
        import pyarrow as pa

        rows = pa.array(index, mask=is_bad)  # a null index takes a row of empty cells
        self.done += size
        return Chunk(table.take(rows), malformed={p: msg for p, (_, msg) in zip(positions, taken)})


def _slots(positions: list[int], size: int) -> list[int]:
    """Distinct, increasing slots within the chunk for the malformed lines (ascending)."""
    out: list[int] = []
    for i, p in enumerate(positions):
        low = out[-1] + 1 if out else 0
        out.append(min(max(p, low), size - (len(positions) - i)))
    return out


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


def frame_to_table(frame: pd.DataFrame, malformed: Mapping[int, str] | None = None) -> RawTable:
    """A DataFrame read from a file as the neutral table (missing cells as None); rows in
    ``malformed`` are structural errors, not scored."""
    columns = []
    for name in frame.columns:
        values = frame[name].to_numpy(dtype=object)
        missing = pd.isna(values)
        if missing.any():
            values = values.copy()
            values[missing] = None
        columns.append(values)
    return RawTable(names=[str(c) for c in frame.columns], columns=columns, n_rows=len(frame),
                    row_errors=_row_errors(malformed))


def _row_errors(malformed: Mapping[int, str] | None) -> list[FieldError]:
    return [FieldError(msg, row=row) for row, msg in sorted((malformed or {}).items())]
