"""JSON scoring bodies as tables: records with the same keys in every object (Power Query's) take
a transposing shortcut, which must read exactly as the general path does."""
from __future__ import annotations

from server.codecs.json_input import decode_table
from server.types import MISSING, RawTable


def general(records: list) -> tuple[list[str] | None, list[list]]:
    """Names and columns by the general path, forced by one entry that is not an object (it
    adds no name; its cells, MISSING, are dropped again)."""
    table = RawTable.from_records(records + ["not an object"])
    return table.names, [column[:-1] for column in table.columns]


def test_records_with_the_same_keys_read_as_the_general_path_does():
    records = [{"a": 1, "b": "x", "c": None}, {"b": "y", "a": 2.5, "c": True},
               {"c": 3, "a": "4", "b": ""}]
    fast = decode_table({"records": records})
    assert (fast.names, fast.columns) == general(records)
    assert fast.names == ["a", "b", "c"]
    assert fast.columns == [[1, 2.5, "4"], ["x", "y", ""], [None, True, 3]]
    assert fast.n_rows == 3 and fast.row_errors == []


def test_one_key_and_mixed_records():
    assert RawTable.from_records([{"a": 1}, {"a": 2}]).columns == [[1, 2]]
    mixed = RawTable.from_records([{"a": 1}, {"a": 2, "b": 3}, "no"])
    assert mixed.names == ["a", "b"]
    assert mixed.columns == [[1, 2, MISSING], [MISSING, 3, MISSING]]
    assert [e.row for e in mixed.row_errors] == [2]
    assert RawTable.from_records([]).columns == [] and RawTable.from_records([{}]).n_rows == 1
