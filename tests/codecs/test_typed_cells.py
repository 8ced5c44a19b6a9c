"""Text cells typed on the way out: what becomes a number or a date, and what stays text."""
from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pytest

from server.codecs.typed_cells import cell_value, typed_numbers


@pytest.mark.parametrize("text, numeric, expected", [
    ("12", False, 12), ("-3.5", False, -3.5), ("0.25", False, 0.25), ("0", False, 0),
    ("007", False, "007"), ("+44", False, "+44"), ("1e3", False, "1e3"), ("12.", False, "12."),
    ("1234567890123456", False, "1234567890123456"),  # past Excel's 15 digits
    ("0.1234567890123456", False, "0.1234567890123456"),
    ("007", True, 7), ("+1.5e3", True, 1500), (" 12 ", True, 12), ("1e400", True, "1e400"),
    ("abc", True, "abc"), ("NaN", True, "NaN"), ("inf", False, "inf"),
    ("2024-02-29", False, date(2024, 2, 29)), ("2024-02-30", False, "2024-02-30"),
    ("2024-03-01T09:30:00", False, datetime(2024, 3, 1, 9, 30)),
    ("2024-03-01 09:30:00.5", False, datetime(2024, 3, 1, 9, 30, 0, 500000)),
    ("2024-03-01T09:30:00+02:00", False, "2024-03-01T09:30:00+02:00"),  # a zone: text
    ("1850-01-01", False, "1850-01-01"), ("=SUM(A1)", False, "=SUM(A1)"), ("", False, ""),
])
def test_cell_value(text, numeric, expected):
    value = cell_value(text, numeric)
    assert value == expected and type(value) is type(expected)


def test_typed_numbers_casts_the_models_numeric_text_columns_only():
    table = pa.table({"a": ["1", "x", "", " 2.5 "], "b": ["007", "1", "2", "3"],
                      "c": pa.array([1, 2, 3, 4])})
    typed = typed_numbers(table, {"a": "integer", "c": "number"})
    assert typed.column("a").type == pa.float64()
    assert typed.column("a").to_pylist() == [1.0, None, None, 2.5]
    assert typed.column("b").to_pylist() == ["007", "1", "2", "3"]  # not the model's: as it came
    assert typed.column("c").to_pylist() == [1, 2, 3, 4]
