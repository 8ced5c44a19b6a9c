"""The M harness (powerbi/tools/m-eval.mjs) itself: it evaluates M as the language defines it where
the connector depends on it, and takes the pessimistic reading where Power Query promises nothing
(an unbuffered list is recomputed on every walk, an unstable source reorders on every read)."""
from __future__ import annotations

from typing import Any

from tests.powerbi.m_harness import m_table, run_m

SECTION = """section Probe;
Try = (x) => try x() otherwise "caught";
Optional = (r as record) => {r[a]?, r[b]?};
NeedsText = (t as text) => t;
Walks = () =>
    let
        counted = List.Transform({1, 2, 3}, (i) => Function.InvokeAfter(() => i, #duration(0, 0, 0, i))),
        twice = List.Sum(counted) + List.Count(counted)
    in
        twice;
WalksBuffered = () =>
    let
        counted = List.Buffer(
            List.Transform({1, 2, 3}, (i) => Function.InvokeAfter(() => i, #duration(0, 0, 0, i))))
    in
        List.Sum(counted) + List.Count(counted);
ReadTwice = (input as table) => {Table.Column(input, "n"), Table.Column(input, "n")};
ReadOnce = (input as table) => let b = Table.Buffer(input) in {Table.Column(b, "n"), Table.Column(b, "n")};
Merge = () => [a = 1] & [b = 2] & [a = 3];
Lazy = () => let unused = error "never", used = 1 in used;
Fails = () => Try(() => error "boom");
"""


def probe(tmp_path, call: str, *args: Any):
    path = tmp_path / "Probe.pq"
    path.write_text(SECTION)
    return run_m(None, {}, call, *args, section=path)


def test_errors_optional_access_and_parameter_types(tmp_path):
    assert probe(tmp_path, "Optional", {"a": 1}).result == [1, None]
    refused = probe(tmp_path, "NeedsText", None).error
    assert refused["Reason"] == "Expression.Error" and "type text" in refused["Message"]
    assert probe(tmp_path, "Merge").result == {"a": 3, "b": 2}
    assert probe(tmp_path, "Lazy").result == 1  # let bindings are evaluated only when used


def test_an_unbuffered_list_is_recomputed_on_every_walk(tmp_path):
    assert probe(tmp_path, "Walks").delays == [1, 2, 3, 1, 2, 3]
    assert probe(tmp_path, "WalksBuffered").delays == [1, 2, 3]


def test_an_unstable_source_is_a_new_query_in_a_new_order_on_each_read(tmp_path):
    rows = [{"n": i} for i in range(20)]
    twice = probe(tmp_path, "ReadTwice", m_table(rows, {"n": "number"}, unstable=True))
    first, second = twice.result
    assert sorted(first) == sorted(second) == list(range(20)) and first != second
    assert twice.source_reads == {"input": 2}
    once = probe(tmp_path, "ReadOnce", m_table(rows, {"n": "number"}, unstable=True))
    assert once.result[0] == once.result[1] and once.source_reads == {"input": 1}


def test_try_otherwise_catches_m_errors(tmp_path):
    assert probe(tmp_path, "Fails").result == "caught"
