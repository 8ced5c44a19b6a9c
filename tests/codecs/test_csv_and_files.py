"""CSV decoding, formula-injection safety and the file writers."""
from __future__ import annotations

import pandas as pd
import pytest
from openpyxl import load_workbook

from server.codecs.csv_codec import decode_csv, encode_csv
from server.codecs.file_writer import TableWriter
from server.codecs.safe_cells import safe_cell
from server.errors import MalformedRequest


def test_decode_csv_rows_and_errors():
    table = decode_csv(b"a,b\n1,\n2,3,4\n")
    assert table.names == ["a", "b"] and table.n_rows == 2
    assert table.columns[1][0] is None
    assert [(e.row, e.message) for e in table.row_errors] == [(1, "expected 2 fields, got 3")]


@pytest.mark.parametrize("body, fragment", [
    (b"", "empty"), (b"\xff\xfe", "UTF-8"), (b"a,a\n1,2", "once"), (b",\n1,2", "once"),
])
def test_decode_csv_refuses(body, fragment):
    with pytest.raises(MalformedRequest, match=fragment):
        decode_csv(body)


@pytest.mark.parametrize("value", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx",
                                   '=HYPERLINK("http://x")'])
def test_formula_payloads_are_neutralised(value):
    import csv
    import io

    assert safe_cell(value) == "'" + value
    rows = list(csv.reader(io.StringIO(encode_csv(["h"], [[value]]), newline="")))
    assert rows[1] == ["'" + value]


def test_numbers_stay_numbers():
    assert safe_cell(-5) == -5 and safe_cell("abc") == "abc"


@pytest.mark.parametrize("suffix", ["csv", "xlsx", "parquet"])
def test_table_writer_is_atomic_and_safe(tmp_path, suffix):
    out = tmp_path / f"out.{suffix}"
    writer = TableWriter(out)
    writer.write(pd.DataFrame({"name": ["=cmd|' /C calc'!A0", "ok"], "x": [1.5, 2.0]}))
    assert not out.exists()  # nothing visible until complete
    writer.write(pd.DataFrame({"name": ["@x"], "x": [3.0]}))
    writer.close()
    if suffix == "csv":
        back = pd.read_csv(out)
    elif suffix == "parquet":
        back = pd.read_parquet(out)
    else:
        ws = load_workbook(out).active
        rows = list(ws.values)
        back = pd.DataFrame(rows[1:], columns=rows[0])
    assert back["name"].tolist() == ["'=cmd|' /C calc'!A0", "ok", "'@x"]
    assert back["x"].tolist() == [1.5, 2.0, 3.0]


def test_table_writer_abort_leaves_nothing(tmp_path):
    out = tmp_path / "out.csv"
    writer = TableWriter(out)
    writer.write(pd.DataFrame({"a": [1]}))
    writer.abort()
    assert list(tmp_path.iterdir()) == []
