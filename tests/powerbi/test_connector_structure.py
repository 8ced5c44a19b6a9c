"""The connector's structure, read from the syntax tree of Microsoft's M parser
(powerbi/tools/m-facts.mjs): Power Query gives no guarantee that a table or list is read only
once, so the connector must say so itself (Table.Buffer, List.Buffer, Binary.Buffer). Each rule is
also run on a small section written the old way, to show it catches what it is meant to."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.live import ROOT

PBI = ROOT / "powerbi"
CONNECTOR = PBI / "connector" / "ScoreBridge.pq"
RESOURCES = (PBI / "connector" / "resources.resx").read_text()

OLD_WAY = """[Version = "1.0.0"]
section Old;
Predict = (base as text, input as table) as table =>
    let
        records = Table.ToRecords(input),
        answers = List.Transform(List.Split(records, 100), (batch) => Post(base, batch)),
        predictions = List.Combine(List.Transform(answers, (a) => a[predictions])),
        versions = List.Transform(answers, (a) => a[version])
    in
        Table.FromColumns(Table.ToColumns(input) & {predictions}, Table.ColumnNames(input) & {"prediction"});
Post = (base as text, batch as list) as record =>
    let
        response = Web.Contents(base, [RelativePath = "predict", Content = Json.FromValue(batch)]),
        status = Value.Metadata(response)[Response.Status]
    in
        if status >= 400 then error Error.Record("Bad", "Scoring failed", []) else Json.Document(response);
"""


def facts(path: Path) -> dict[str, Any]:
    if shutil.which("node") is None or not (PBI / "tools" / "node_modules").exists():
        pytest.skip("run `make test` first (it installs Node tooling)")
    proc = subprocess.run(["node", str(PBI / "tools" / "m-facts.mjs"), str(path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=True)
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def connector() -> dict[str, Any]:
    return facts(CONNECTOR)


@pytest.fixture(scope="module")
def old_way(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("m") / "Old.pq"
    path.write_text(OLD_WAY)
    return facts(path)


def input_reads(f: dict[str, Any], function: str) -> list[str]:
    """Problems with how ``function`` reads its table parameter (empty: read once, buffered)."""
    problems = []
    for param in f["tableParams"]:
        reads = [r for r in param["refs"] if not r["schemaOnly"]]
        if len(reads) > 1:
            problems.append(f"{param['member']}: '{param['param']}' is read {len(reads)} times "
                            f"(lines {[r['line'] for r in reads]})")
        if param["member"] == function and [(r["callee"], r["arg"]) for r in param["refs"]] != \
                [("Table.Buffer", 0)]:
            problems.append(f"{function}: '{param['param']}' is not read once through Table.Buffer: "
                            f"{param['refs']}")
    return problems


def unbuffered_answers(f: dict[str, Any]) -> list[str]:
    problems = []
    for call in f["webContents"]:
        readers = [u["callee"] for u in call["uses"]]
        if call["binding"] is None or readers.count("Binary.Buffer") != 1 or \
                any(r not in ("Binary.Buffer", "Value.Metadata") for r in readers):
            problems.append(f"{call['member']} line {call['line']}: the Web.Contents answer is read "
                            f"by {readers} (want one Binary.Buffer, and Value.Metadata)")
    for walked in f["requestLists"]:
        if not all(u["buffered"] for u in walked["uses"]):
            problems.append(f"{walked['member']} line {walked['line']}: the {walked['fn']} list that "
                            f"sends a POST per item is walked without List.Buffer "
                            f"({len(walked['uses'])} use(s))")
    return problems


def hard_coded_messages(f: dict[str, Any]) -> list[str]:
    keys = set(re.findall(r'<data name="([^"]+)"', RESOURCES))
    problems = []
    for m in f["errorMessages"]:
        sourced = "Extension.LoadString" in m["calls"] or "ProblemDetail" in m["calls"]
        prose = [t for t in m["literals"] if t not in keys and len(t.strip(" ,;:")) > 0 and t != "null"]
        if not sourced or prose:
            problems.append(f"{m['member']} line {m['line']}: message {prose or m['calls']}")
    return problems


def test_the_input_table_is_read_once_through_table_buffer(connector, old_way):
    assert "Value.ReplaceType(PredictImpl, PredictType)" in CONNECTOR.read_text()
    assert input_reads(connector, "PredictImpl") == []
    assert input_reads(old_way, "Predict")  # the old way reads `input` twice, unbuffered


def test_answers_are_buffered_before_they_are_read_twice(connector, old_way):
    assert "PredictImpl" in connector["posts"] and "ScoreStep" in connector["posts"]
    assert connector["requestLists"], "the batches' list was not found"
    assert unbuffered_answers(connector) == []
    problems = unbuffered_answers(old_way)
    assert any("Web.Contents answer" in p for p in problems)
    assert any("List.Transform list that sends a POST" in p for p in problems)


def test_messages_users_read_come_from_resources(connector, old_way):
    assert hard_coded_messages(connector) == []
    assert hard_coded_messages(old_way)
    assert not re.search(r'Documentation\.(?!Name\b)\w+ = "', CONNECTOR.read_text())  # captions too
    for key in set(re.findall(r'Extension\.LoadString\("([^"]+)"\)', CONNECTOR.read_text())):
        assert f'name="{key}"' in RESOURCES, key


def test_row_errors_are_not_folded_by_replacing_list_ranges(connector):
    """Folding n errors with List.ReplaceRange copies the list per error (quadratic)."""
    assert "List.ReplaceRange" not in connector["calls"]
    assert connector["calls"].get("Table.NestedJoin", 0) >= 2  # answers and errors join by row
