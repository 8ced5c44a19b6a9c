"""Writing result tables to CSV, XLSX or Parquet, chunk by chunk, safe against formula injection
and never leaving a partial file under the final name."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .arrow_frames import arrow_table, is_na, text_frame
from .file_formats import file_format
from .safe_cells import NUMBER_PATTERN, TRIGGER_PATTERN, safe_cell
from .typed_cells import numeric_columns, typed_numbers, workbook_row


class TableWriter:
    """Writes chunks of a result table to CSV, XLSX or Parquet under a temporary name and renames
    it into place only on :meth:`close`, so a partial output never looks complete. Text cells are
    neutralised against formula injection. ``types`` (a column's type in the model's signature)
    lets input columns read as text go out as numbers and dates (:mod:`.typed_cells`)."""

    def __init__(self, path: Path, types: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.types = dict(types or {})
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
            self._write_xlsx(chunk if isinstance(chunk, pd.DataFrame) else text_frame(chunk))
        else:
            self._write_arrow(chunk)
        self.rows += len(chunk)

    def _write_arrow(self, chunk: Any) -> None:
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        table = arrow_table(chunk) if isinstance(chunk, pd.DataFrame) else chunk
        table = neutralise(typed_numbers(table, self.types) if self.format == "parquet" else table)
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
        numeric = numeric_columns([str(c) for c in frame.columns], self.types)
        for row in frame.itertuples(index=False):
            self._sheet.append([None if is_na(v) else safe_cell(v)
                                for v in workbook_row(row, numeric)])

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


