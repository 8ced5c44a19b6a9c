"""Reading tabular files (CSV, XLSX, Parquet) for samples, holdout sets and local scoring."""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

import numpy as np
import pandas as pd

from ..errors import InvalidInput, MalformedRequest
from ..types import FieldError, RawTable
from .safe_cells import NUMBER_PATTERN, TRIGGER_PATTERN, safe_cell

CSV_BLOCK_BYTES = 4 << 20
SNIFF_BYTES = 4 << 20

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


@dataclass
class Chunk:
    """Rows of an input file, values as read (an Arrow table for CSV and Parquet, a DataFrame
    for XLSX), and the lines that could not be split into columns (position in this chunk ->
    what was wrong); those positions hold empty cells."""

    table: Any = None
    frame_: pd.DataFrame | None = None
    malformed: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.table.num_rows if self.table is not None else len(self.frame_)

    @property
    def frame(self) -> pd.DataFrame:
        if self.frame_ is None:
            self.frame_ = _text_frame(self.table)
        return self.frame_

    def arrow(self) -> Any:
        """The input columns as an Arrow table (for writing them back out)."""
        if self.table is None:
            self.table = _arrow_table(self.frame_)
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


def _text_frame(table: Any) -> pd.DataFrame:
    """An Arrow table as a DataFrame of object columns (values as Python objects)."""
    return pd.DataFrame({name: np.asarray(table.column(name).to_pylist(), dtype=object)
                         if table.num_rows else np.empty(0, dtype=object)
                         for name in table.column_names}, columns=table.column_names)


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


class TableWriter:
    """Writes chunks of a result table to CSV, XLSX or Parquet under a temporary name and renames
    it into place only on :meth:`close`, so a partial output never looks complete. Text cells are
    neutralised against formula injection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = file_format(path.name)
        self.tmp = path.with_name(f".{path.name}.partial")
        self._writer: Any = None
        self._schema: Any = None
        self._book: Any = None
        self._sheet: Any = None
        self.rows = 0

    def write(self, chunk: Any) -> None:
        """Append a chunk: an Arrow table or a DataFrame."""
        if self.format == "xlsx":
            self._write_xlsx(chunk if isinstance(chunk, pd.DataFrame) else _text_frame(chunk))
        else:
            self._write_arrow(chunk)
        self.rows += len(chunk)

    def _write_arrow(self, chunk: Any) -> None:
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        table = neutralise(_arrow_table(chunk) if isinstance(chunk, pd.DataFrame) else chunk)
        if self._writer is None:
            # a column that is empty in the first chunk has no type yet: text from then on
            self._schema = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type)
                                      else f for f in table.schema])
            if self.format == "csv":
                self._writer = pcsv.CSVWriter(self.tmp, self._schema, write_options=pcsv.WriteOptions(
                    quoting_style="needed", quoting_header="needed", eol="\r\n"))
            else:
                self._writer = pq.ParquetWriter(self.tmp, self._schema)
        self._writer.write_table(_conform(table, self._schema))

    def _write_xlsx(self, frame: pd.DataFrame) -> None:
        from openpyxl import Workbook

        if self._book is None:
            self._book = Workbook(write_only=True)
            self._sheet = self._book.create_sheet("scored")
            self._sheet.append([safe_cell(str(c)) for c in frame.columns])
        for row in frame.itertuples(index=False):
            self._sheet.append([None if _is_na(v) else safe_cell(v) for v in row])

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
            try:
                self._writer.close()
            except OSError:
                pass
        self.tmp.unlink(missing_ok=True)


def _arrow_table(frame: pd.DataFrame) -> Any:
    """A chunk as an Arrow table; object columns holding mixed kinds become text."""
    import pyarrow as pa

    arrays, names = [], []
    for name in frame.columns:
        column = frame[name]
        try:
            array = pa.array(column, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            array = pa.array([None if _is_na(v) else str(v) for v in column], type=pa.string())
        arrays.append(array)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def _conform(table: Any, schema: Any) -> Any:
    """A later chunk in the first chunk's schema (a column typed differently becomes text)."""
    import pyarrow as pa

    if table.schema.equals(schema):
        return table
    columns = []
    for f in schema:
        column = table.column(f.name)
        try:
            columns.append(column.cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            columns.append(pa.array([None if v is None else str(v)
                                     for v in column.to_pylist()], type=f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def neutralise(table: Any) -> Any:
    """Every text column of an Arrow table made safe against formula injection, vectorised:
    the same rule as :func:`safe_cell`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            risky = pc.and_(pc.match_substring_regex(column, TRIGGER_PATTERN),
                            pc.invert(pc.match_substring_regex(column, NUMBER_PATTERN)))
            if pc.any(risky).as_py():
                quote, empty = pa.scalar("'", column.type), pa.scalar("", column.type)
                column = pc.if_else(risky, pc.binary_join_element_wise(quote, column, empty),
                                    column)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


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
