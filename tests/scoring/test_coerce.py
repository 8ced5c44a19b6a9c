"""The coercion rules, one by one, against a hand-written signature."""
from __future__ import annotations

import numpy as np
import pytest

from server.codecs.table import table_from_columns
from server.errors import InvalidInput
from server.scoring.coerce import coerce
from server.types import MISSING, Column, Output, RawTable, Signature

SIG = Signature(inputs=(
    Column("age", "integer"),
    Column("income", "number", accepts_missing=False),
    Column("plan", "string", categories=("basic", "gold"), accepts_unknown=False),
    Column("region", "string", categories=("north", "south"), accepts_unknown=True),
    Column("active", "boolean"),
), output=Output(kind="regression", type="number"))


def rec(**kw):
    base = {"age": 30, "income": 1000.0, "plan": "gold", "region": "north", "active": True}
    base.update(kw)
    return base


def run(*records):
    return coerce(RawTable.from_records(list(records)), SIG)


def messages(result):
    return [(e.row, e.column, e.message) for e in result.errors]


def test_clean_rows_are_typed():
    out = run(rec(), rec(age="41", income="2.5e3", active="yes"))
    assert not out.errors
    assert out.frame["age"].dtype == np.int64 and out.frame["age"].tolist() == [30, 41]
    assert out.frame["income"].tolist() == [1000.0, 2500.0]
    assert out.frame["active"].tolist() == [True, True]


@pytest.mark.parametrize("field, value, message", [
    ("age", "abc", "expected a number, got 'abc'"),
    ("age", 1.5, "expected a whole number, got 1.5"),
    ("age", True, "expected a number, got True"),
    ("income", None, "missing value: the model needs a value here"),
    ("income", "", "missing value: the model needs a value here"),
    ("income", float("inf"), "expected a finite number, got inf"),
    ("income", "inf", "expected a finite number, got 'inf'"),
    ("income", [1], "expected a number, got list"),
    ("plan", "platinum", "unknown category 'platinum'; expected one of: basic, gold"),
    ("plan", {"a": 1}, "expected text, got dict"),
    ("active", "maybe", "expected true or false, got 'maybe'"),
])
def test_bad_cells_name_row_column_and_problem(field, value, message):
    out = run(rec(), rec(**{field: value}))
    assert messages(out) == [(1, field, message)]
    assert out.rows.tolist() == [0]
    assert len(out.frame) == 1


def test_missing_values_pass_with_a_warning_where_allowed():
    out = run(rec(age=None, region=None, active=None))
    assert not out.errors
    assert np.isnan(out.frame["age"][0])
    assert {w.column for w in out.warnings} == {"age", "region", "active"}


def test_unknown_category_allowed_is_a_warning_and_case_is_forgiven():
    out = run(rec(region="east", plan="GOLD "))
    assert not out.errors
    assert out.frame["plan"][0] == "gold"
    texts = [w.message for w in out.warnings]
    assert any("unknown category 'east'" in t for t in texts)
    assert any("'GOLD ' read as 'gold'" in t for t in texts)


def test_absent_key_is_a_row_error():
    row = rec()
    del row["age"]
    out = run(rec(), row)
    assert messages(out) == [(1, "age", "value missing from this row")]


def test_missing_columns_and_forgiving_names():
    with pytest.raises(InvalidInput) as err:
        coerce(table_from_columns({"age": [1]}), SIG)
    assert "income, plan, region, active" in err.value.detail
    table = table_from_columns({"Age": [1], "INCOME": [2.0], "plan": ["gold"],
                                   "region": ["north"], "active": [False], "extra": [1]})
    out = coerce(table, SIG)
    assert not out.errors
    assert any("'Age' matched to 'age'" in w.message for w in out.warnings)
    assert any(w.column == "extra" for w in out.warnings)


def test_positional_rows():
    out = coerce(RawTable.positional([[1, 2.0, "gold", "north", True], [1, 2]]), SIG)
    assert messages(out) == [(1, None, "expected 5 values, got 2")]
    with pytest.raises(InvalidInput, match="expected 5 values per row"):
        coerce(RawTable.positional([[1, 2]]), SIG)


def test_warnings_are_capped():
    out = run(*[rec(region="east") for _ in range(300)])
    assert len(out.warnings) == 101
    assert out.warnings[-1].message == "200 more warnings not shown"


def test_missing_sentinel_is_distinct_from_null():
    assert MISSING is type(MISSING)()
    assert repr(MISSING) == "MISSING"


def test_zero_rows_need_no_columns():
    out = coerce(RawTable.from_records([]), SIG)
    assert out.n_rows == 0 and list(out.frame.columns) == SIG.names and not out.errors
    with pytest.raises(InvalidInput):  # named columns with no rows must still be the right ones
        coerce(table_from_columns({"age": []}), SIG)


POOL = {
    "integer": [1, 2.0, "3", " 4 ", "", None, "x", 1.5, True, 2**60, "1e3", float("nan"), "#N/A",
                MISSING, "nan", -0.0, 10**400],
    "number": [1.5, 2, "3.25", "1_000", "", None, "inf", float("inf"), "abc", False, 2**70,
               "NA", "#VALUE!", "1e-300", "-0", MISSING],
    "string": ["gold", "basic", "Gold", " basic", "", None, 3, 2.5, "platinum", "#N/A", True,
               MISSING, "=cmd()"],
}


def _mixed(seed: int, n: int = 300) -> tuple[Signature, dict[str, list]]:
    """A signature and ``n`` rows of clean cells mixed with every kind of doubtful one."""
    rng = np.random.default_rng(seed)
    sig = Signature(inputs=(
        Column("a", "integer"), Column("b", "number", accepts_missing=seed % 2 == 0),
        Column("c", "string", categories=("basic", "gold"), accepts_unknown=seed % 3 == 0),
        Column("d", "number", categories=(1.0, 2.0, 3.0)),
    ), output=Output(kind="regression", type="number"))
    clean = {"a": 7, "b": 0.5, "c": "gold", "d": 2}
    columns = {}
    for col in sig.inputs:
        pool = POOL[col.type] if col.name != "d" else [1, 2.0, "3", 4, "", "x"]
        dirty = rng.random(n) < (0.05 if seed < 3 else 0.6)
        columns[col.name] = [pool[rng.integers(len(pool))] if d else clean[col.name]
                             for d in dirty]
    return sig, columns


@pytest.mark.parametrize("seed", range(6))
def test_bulk_conversion_matches_the_cell_by_cell_rules(seed):
    """Clean cells are converted in bulk and only the rest cell by cell; whatever the mix, the
    values, errors and warnings must be exactly those of the cell-by-cell rules alone."""
    sig, columns = _mixed(seed)
    n = 300
    table = RawTable(names=sig.names, columns=list(columns.values()), n_rows=n)
    bulk = coerce(table, sig)
    _same(bulk, _reference(table, sig))
    # the same cells as CSV text in Arrow columns, as batch jobs read them
    import pyarrow as pa

    as_text = [pa.array(["" if v is None or v is MISSING else str(v) for v in values])
               for values in columns.values()]
    text_table = RawTable(names=sig.names, columns=as_text, n_rows=n)
    _same(coerce(text_table, sig), _reference(text_table, sig))


@pytest.mark.parametrize("seed", [1, 4])
def test_a_row_alone_is_read_as_in_a_batch(seed):
    """Small tables (a single Excel cell, one API row) take the per-cell rules directly; each
    row must come out exactly as it does inside a large, bulk-converted table."""
    from server.scoring.coerce import CELL_BY_CELL_ROWS

    sig, columns = _mixed(seed, 120)
    whole = coerce(RawTable(names=sig.names, columns=list(columns.values()), n_rows=120), sig)
    assert 120 > CELL_BY_CELL_ROWS
    for start in range(0, 120, CELL_BY_CELL_ROWS):
        part = coerce(RawTable(names=sig.names, n_rows=CELL_BY_CELL_ROWS, columns=[
            v[start:start + CELL_BY_CELL_ROWS] for v in columns.values()]), sig)
        assert messages(part) == [(r - start, c, m) for r, c, m in messages(whole)
                                  if start <= r < start + CELL_BY_CELL_ROWS]
        assert [(w.row, w.column, w.message) for w in part.warnings] == [
            (w.row - start, w.column, w.message) for w in whole.warnings
            if w.row is not None and start <= w.row < start + CELL_BY_CELL_ROWS]
        keep = (whole.rows >= start) & (whole.rows < start + CELL_BY_CELL_ROWS)
        assert (part.rows + start).tolist() == whole.rows[keep].tolist()
        for name in sig.names:
            got, want = part.frame[name], whole.frame[name][keep]
            if len(got):
                assert got.dtype == want.dtype or whole.frame[name].isna().any(), name
            assert got.astype(object).fillna("NA").tolist() == \
                want.astype(object).fillna("NA").tolist(), name


def _reference(table, sig):
    from server.scoring import coerce as module

    original = module._coerce_column

    def cell_by_cell(col, values, report, skip):
        cells = values.to_pylist() if hasattr(values, "to_pylist") else list(values)
        return module._array(col, module._coerce_cells(col, enumerate(cells), report, skip))

    module._coerce_column = cell_by_cell
    try:
        return coerce(table, sig)
    finally:
        module._coerce_column = original


def _same(bulk, reference):
    assert messages(bulk) == messages(reference)
    assert [(w.row, w.column, w.message) for w in bulk.warnings] == \
        [(w.row, w.column, w.message) for w in reference.warnings]
    assert bulk.rows.tolist() == reference.rows.tolist()
    for name in reference.frame.columns:
        assert bulk.frame[name].dtype == reference.frame[name].dtype, name
        assert bulk.frame[name].astype(object).fillna("NA").tolist() == \
            reference.frame[name].astype(object).fillna("NA").tolist(), name
