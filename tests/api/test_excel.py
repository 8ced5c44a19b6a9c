"""The Excel surface over HTTP: the batch endpoint, WEBSERVICE(), the starter workbook and workbook
scoring (the manifest and the add-in's files: test_excel_manifest.py)."""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.table import Table

from server.app import create_app
from server.demo import FEATURES
from tests.conftest import assert_probabilities, assert_problem, churn_rows, jsonable, register_file

ROW = [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"]


def batch(client, calls, scope="score", **extra):
    return client.post("/excel/v1/batch", json={"calls": calls, **extra}, scope=scope)


def test_batch_scores_many_calls_in_order(client, demo_model, demo_registered):
    rows = jsonable(churn_rows(30))
    resp = batch(client, [{"model": "churn", "values": [r]} for r in rows])
    assert resp.status_code == 200, resp.json
    results = resp.json["results"]
    expected = demo_model.predict(churn_rows(30)).tolist()
    assert [r["predictions"][0] for r in results] == expected
    probs = demo_model.predict_proba(churn_rows(30))
    assert_probabilities([r["probabilities"][0] for r in results], probs)
    assert all(r["version"] == 1 and r["header"] is False and r["errors"] == [] for r in results)


def test_batch_header_rows_match_by_name(client, demo_model, demo_registered):
    frame = churn_rows(5)
    order = list(reversed(FEATURES)) + ["customer"]
    values = [order] + [[*reversed(r), f"C{i}"] for i, r in enumerate(jsonable(frame))]
    resp = batch(client, [{"model": "churn", "values": values}])
    result = resp.json["results"][0]
    assert result["header"] is True
    assert result["predictions"] == demo_model.predict(frame).tolist()
    # a header row naming other things is data: read by position, and wrong
    resp = batch(client, [{"model": "churn", "values": [["a", "b", "c", "d", "e", "f"]]}])
    assert resp.json["results"][0]["header"] is False
    assert resp.json["results"][0]["errors"]


def test_batch_header_hint_for_later_parts(client, demo_model, demo_registered):
    frame = churn_rows(4)
    order = list(reversed(FEATURES))
    part = [list(reversed(r)) for r in jsonable(frame)]
    resp = batch(client, [{"model": "churn", "values": part, "header": order}])
    result = resp.json["results"][0]
    assert result["header"] is True and len(result["predictions"]) == 4
    assert result["predictions"] == demo_model.predict(frame).tolist()


def test_batch_bad_rows_and_bad_calls_do_not_spoil_others(client, demo_registered):
    calls = [
        {"model": "churn", "values": [ROW]},
        {"model": "churn", "values": [[12, "abc", "month-to-month", "electronic-check", 3,
                                       "fiber"]]},
        {"model": "churn", "values": [[12, 70.5, "#N/A", "electronic-check", 3, "fiber"]]},
        {"model": "churn", "values": [[1, 2, 3]]},
        {"model": "nope", "values": [ROW]},
        {"model": "churn", "values": [ROW, ["", "", "", "", "", ""]]},
        {"model": "churn", "values": [["tenure_months", "contract"], [1, "one-year"]]},
    ]
    results = batch(client, calls).json["results"]
    assert results[0]["predictions"][0] in ("yes", "no") and not results[0]["errors"]
    assert results[1]["errors"] == [{"row": 0, "column": "monthly_charges",
                                     "message": "expected a number, got 'abc'"}]
    assert results[2]["errors"][0]["message"] == "the cell holds the Excel error #N/A"
    assert "expected 6 values per row" in results[3]["error"] and results[3]["status"] == 422
    assert results[4] == {"error": "no model named 'nope'", "status": 404}
    # an empty row (a formula filled down past the data) is left unscored, without error
    assert results[5]["predictions"][0] is not None and results[5]["predictions"][1] is None
    assert results[5]["blank"] == [1] and results[5]["errors"] == []
    assert "missing column" in results[6]["error"] and results[6]["status"] == 422


def test_batch_default_model(client, demo_model, demo_registered, wine):
    resp = batch(client, [{"values": [ROW]}])
    assert resp.json["results"][0]["model"] == "churn"
    register_file(client, "wine", wine["path"], wine["sample"])
    resp = batch(client, [{"values": [ROW]}])
    assert "name the model" in resp.json["results"][0]["error"]


@pytest.mark.parametrize("body, fragment", [
    ({"calls": 1}, "calls"), ({"calls": {"values": [ROW]}}, "'calls' must be a valid list"),
    ({"calls": [], "probabilities": "yes"}, "'probabilities' must be a valid boolean"),
    ({"calls": [], "options": {}}, "'options' is an unknown field; known: probabilities, compact, calls"),
    ({"calls": [{"values": [ROW]}] * 10_001}, "'calls' must be at most 10000 items long"),
    ({}, "'calls' is required"),
])
def test_batch_malformed_envelope(client, demo_registered, body, fragment):
    """The envelope is the whole request's: a wrong one is a 400 for all of it."""
    assert_problem(client.post("/excel/v1/batch", json=body, scope="score"), 400, fragment)


def test_a_bad_call_fails_alone(client, demo_model, demo_registered):
    """One bad argument in one cell (a version of 1.5, a model name that breaks the naming rule,
    a call that is not an object) fails that call, with the field named; the others score."""
    good = {"model": "churn", "values": [ROW]}
    calls = [good,
             {"model": "churn", "version": 1.5, "values": [ROW]},
             good,
             {"model": "Churn Model", "values": [ROW]},
             1,
             {"model": "churn", "values": [1]},
             {"model": 5, "values": [ROW]},
             {"model": "churn", "values": [ROW], "colour": "red"},
             {"model": "churn", "version": 0, "values": [ROW]},
             {"model": "churn", "version": 1, "values": [ROW]},
             {"model": "", "version": None, "values": [ROW]}]
    resp = batch(client, calls)
    assert resp.status_code == 200, resp.json
    results = resp.json["results"]
    assert len(results) == len(calls)
    expected = demo_model.predict(pd.DataFrame([ROW], columns=FEATURES))[0]
    for i in (0, 2, 9, 10):
        assert results[i]["predictions"] == [expected] and results[i]["version"] == 1, results[i]
    fragments = {1: "'calls.1.version' must be a positive integer",
                 3: "'calls.3.model' must be a model name",
                 4: "'calls.4' must be an object",
                 5: "'calls.5.values' must be a 2-D array",
                 6: "'calls.6.model' must be a valid string",
                 7: "'calls.7.colour' is an unknown field; known: model, version, values, header",
                 8: "'calls.8.version' must be at least 1"}
    for i, fragment in fragments.items():
        assert set(results[i]) == {"error", "status"} and results[i]["status"] == 400
        assert fragment in results[i]["error"], (i, results[i])
    assert "Churn Model" not in resp.get_data(as_text=True)  # the value is never echoed


def test_the_batch_document_still_shows_each_calls_shape(client):
    spec = client.get("/openapi.json", scope=None).json
    body = spec["paths"]["/excel/v1/batch"]["post"]["requestBody"]["content"]["application/json"]
    batch_schema = spec["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    calls = batch_schema["properties"]["calls"]
    assert calls["maxItems"] == 10_000
    call = calls["items"]
    assert call["additionalProperties"] is False and call["required"] == ["values"]
    assert set(call["properties"]) == {"model", "version", "values", "header", "explain"}
    assert {"type": "integer"}.items() <= call["properties"]["version"]["anyOf"][0].items()
    model = next(b for b in call["properties"]["model"]["anyOf"] if b.get("type") == "string")
    assert model["pattern"].startswith("^[a-z]")


def test_batch_row_limit(settings, demo_files):
    app = create_app(replace(settings, max_rows=10))
    key = app.extensions["scorebridge"].keys.create("admin")[0]
    from tests.conftest import KeyClient

    client = KeyClient(app.test_client(), {"deploy": key, "score": key})
    register_file(client, "churn", demo_files["artifact"], demo_files["sample"])
    resp = batch(client, [{"model": "churn", "values": [ROW] * 6}] * 2)
    assert_problem(resp, 413, "12 rows", "limit is 10")


def test_webservice_endpoint(client, keys, demo_model, demo_registered):
    x = ",".join(map(str, ROW))
    resp = client.client.get(f"/excel/v1/predict.txt?model=churn&x={x}&api_key={keys['score']}")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"

    frame = pd.DataFrame([ROW], columns=FEATURES)
    assert resp.get_data(as_text=True) == demo_model.predict(frame)[0]
    resp = client.get(f"/excel/v1/predict.txt?model=churn&x={x}&output=probability",
                      scope="score")
    assert_probabilities(float(resp.get_data(as_text=True)), demo_model.predict_proba(frame)[0][1])
    resp = client.get(f"/excel/v1/predict.txt?model=churn&x={x}&output=probability&class=no",
                      scope="score")
    assert_probabilities(float(resp.get_data(as_text=True)), demo_model.predict_proba(frame)[0][0])
    semicolons = "12;70,5;month-to-month;electronic-check;3;fiber"
    resp = client.get(f"/excel/v1/predict.txt?model=churn&sep=;&x={semicolons}", scope="score")
    assert resp.status_code == 422  # 70,5 is not a number: the error says so
    assert_problem(resp, 422, "monthly_charges", "'70,5'")
    assert_problem(client.get("/excel/v1/predict.txt?model=churn", scope="score"), 400, "'x'")
    assert_problem(client.get("/excel/v1/predict.txt?model=churn&x=1,2", scope="score"), 422,
                   "expected 6 values")
    assert_problem(client.get(f"/excel/v1/predict.txt?model=churn&x={x}&output=odds",
                              scope="score"), 400, "output")
    assert_problem(client.get(f"/excel/v1/predict.txt?model=churn&x={x}&output=probability"
                              "&class=maybe", scope="score"), 422, "unknown class")


def test_starter_workbook(client, demo_registered):
    resp = client.get("/excel/v1/template/churn.xlsx", scope="read")
    assert resp.status_code == 200 and "churn-template.xlsx" in resp.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(resp.data))
    assert wb.sheetnames == ["instructions", "data"]
    data = wb["data"]
    assert [c.value for c in data[1]] == FEATURES
    assert data.max_row == 4  # three example rows
    validations = {str(dv.sqref): dv for dv in data.data_validations.dataValidation}
    contract = validations["C2:C10000"]
    assert contract.type == "list" and contract.formula1 == '"month-to-month,one-year,two-year"'
    assert validations["A2:A10000"].type == "whole"
    assert validations["B2:B10000"].type == "decimal"
    text = "\n".join(str(c.value) for row in wb["instructions"].iter_rows() for c in row)
    assert "=ML.PREDICT(A2:F2,\"churn\")" in text and "WEBSERVICE" in text
    assert "=PREDICT(A2:F2)" in text
    assert all(c.data_type == "s" for row in wb["instructions"].iter_rows() for c in row
               if isinstance(c.value, str) and c.value.startswith("="))
    assert_problem(client.get("/excel/v1/template/nope.xlsx", scope="read"), 404)


def _workbook(frame, *, header_row=3, table=False, extra_sheet=True):
    wb = Workbook()
    ws = wb.active
    ws.title = "customers"
    ws["A1"] = "Q3 customer list"
    ws["A1"].font = Font(bold=True, size=14)
    order = ["id"] + list(reversed(FEATURES))
    for j, name in enumerate(order, start=1):
        cell = ws.cell(header_row, j, name)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="336699")
    for i, row in enumerate(jsonable(frame)):
        r = header_row + 1 + i
        ws.cell(r, 1, f"C{i}")
        for j, value in enumerate(reversed(row), start=2):
            ws.cell(r, j, value)
    last = header_row + len(frame)
    ws.cell(last + 2, 2, f"=SUM(B{header_row + 1}:B{last})")
    if table:
        ws.add_table(Table(displayName="Customers", ref=f"A{header_row}:G{last}"))
    if extra_sheet:
        notes = wb.create_sheet("notes")
        notes["A1"] = "keep me"
        notes["B2"] = "=1+1"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def upload(client, data, name="book.xlsx", scope="score"):
    return client.post("/api/v1/models/churn/score-workbook", scope=scope,
                       data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


@pytest.mark.parametrize("table", [False, True])
def test_score_workbook_round_trip(client, demo_model, demo_registered, table):
    frame = churn_rows(8)
    resp = upload(client, _workbook(frame, table=table))
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert resp.headers["X-Model-Version"] == "1"
    wb = load_workbook(io.BytesIO(resp.data))
    assert wb.sheetnames == ["customers", "notes", "ScoreBridge"]
    ws = wb["customers"]
    header = [c.value for c in ws[3]]
    assert header[:7] == ["id"] + list(reversed(FEATURES))
    assert header[7:] == ["prediction", "probability_no", "probability_yes"]
    assert ws.cell(3, 8).fill.fgColor.rgb.endswith("336699")  # styled like the header
    assert [ws.cell(r, 8).value for r in range(4, 12)] == demo_model.predict(frame).tolist()
    probs = [[ws.cell(r, 9).value, ws.cell(r, 10).value] for r in range(4, 12)]
    assert np.allclose(probs, demo_model.predict_proba(frame))
    assert ws["A1"].font.bold and ws["B13"].value == "=SUM(B4:B11)"  # formulas kept
    assert wb["notes"]["A1"].value == "keep me" and wb["notes"]["B2"].value == "=1+1"
    info = {r[0].value: r[1].value for r in wb["ScoreBridge"].iter_rows(max_row=8)}
    assert info["Model"] == "churn" and info["Version"] == 1 and info["Rows scored"] == 8
    if table:
        assert ws.tables["Customers"].ref == "A3:J11"
        assert [c.name for c in ws.tables["Customers"].tableColumns][-3:] == header[7:]


def test_score_workbook_row_errors_and_injection(client, demo_registered):
    frame = churn_rows(3).astype(object)
    frame.loc[1, "monthly_charges"] = "lots"
    frame.loc[2, "contract"] = '=HYPERLINK("http://evil","x")'
    resp = upload(client, _workbook(frame))
    assert resp.status_code == 200
    wb = load_workbook(io.BytesIO(resp.data))
    ws = wb["customers"]
    assert ws.cell(3, 11).value == "scoring_error"
    assert ws.cell(5, 11).value == "monthly_charges: expected a number, got 'lots'"
    assert ws.cell(5, 8).value is None
    problems = [[c.value for c in row] for row in wb["ScoreBridge"].iter_rows(min_row=10)]
    assert [5, "monthly_charges", "expected a number, got 'lots'"] in problems
    for row in wb["ScoreBridge"].iter_rows():
        for c in row:
            assert not (isinstance(c.value, str) and c.value.startswith("=")), c.value


def test_score_workbook_refusals(client, demo_registered, tmp_path):
    assert_problem(upload(client, b"not a zip"), 422, "not a valid .xlsx")
    assert_problem(upload(client, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100), 422,
                   "password-protected")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (300 * 1024 * 1024))
    assert len(buf.getvalue()) < 2_000_000
    assert_problem(upload(client, buf.getvalue()), 413, "expands to")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (50 * 1024 * 1024))
    assert_problem(upload(client, buf.getvalue()), 413, "zip bomb")
    wb = Workbook()
    wb.active.append(["tenure_months", "contract"])
    out = io.BytesIO()
    wb.save(out)
    assert_problem(upload(client, out.getvalue()), 422, "no table or header row",
                   "lacks: monthly_charges")
    assert_problem(client.post("/api/v1/models/churn/score-workbook", json={}, scope="score"),
                   415)
    assert_problem(client.post("/api/v1/models/nope/score-workbook", scope="score",
                               data={"file": (io.BytesIO(b"x"), "a.xlsx")},
                               content_type="multipart/form-data"), 404)


def test_xml_entity_attack_in_workbook_is_refused(client, demo_registered):
    wb = Workbook()
    wb.active.append(FEATURES)
    wb.active.append(ROW)
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/workbook.xml":
                data = (b'<!DOCTYPE workbook [<!ENTITY a "aaaaaaaaaa">'
                        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>' + data)
            z.writestr(item, data)
    assert_problem(upload(client, out.getvalue()), 422, "could not be read")


def assert_same_answers(got, expected):
    """The same answers call for call; probabilities within the tolerance, as the calls may
    have been scored in other groupings (a group with a row the compiled path cannot take is
    answered by scikit-learn in float64)."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert {k: v for k, v in a.items() if k != "probabilities"} == \
            {k: v for k, v in b.items() if k != "probabilities"}
        assert ("probabilities" in a) == ("probabilities" in b)
        for p, q in zip(a.get("probabilities", []), b.get("probabilities", [])):
            assert (p is None) == (q is None)
            if p is not None:
                assert_probabilities(p, q)


def test_plain_calls_answer_as_declared_calls_do(client, demo_registered):
    """The usual call (model and values only) is checked without pydantic: its answers are the
    ones the declared form gives, bad rows, blank rows, empty ranges and the default model
    included, in every position of the batch."""
    rows = jsonable(churn_rows(5))
    plain = [{"model": "churn", "values": [r]} for r in rows[:2]] + [
        {"model": "churn", "values": [[12, "abc", "month-to-month", "electronic-check", 3,
                                       "fiber"]]},
        {"model": "churn", "values": []},
        {"model": "", "values": [ROW, ["", None, "", "", "", ""]]},
        {"values": [["", "", "", "", "", ""], rows[2]]},
        {"model": "churn", "values": [[12, 70.5, "#N/A", "electronic-check", 3, "fiber"],
                                      rows[3]]},
        {"model": "churn", "values": [list(FEATURES), rows[4]]},
        {"model": "churn", "values": [[1, 2, 3]]},
        {"model": "nope", "values": [ROW]},
        {"model": "churn", "values": [["", None, "", "", "", ""]]},
        {"model": "churn", "values": [list(FEATURES)]},
        {"model": "churn", "values": [[12, 70.5, "#N/A", "electronic-check", 3, "fiber"]]},
        {"model": "churn", "values": [[None, 70.5, "month-to-month", "", 3, "fiber"]]},
        {"model": "churn", "values": [[1, 2, 3, 4, 5, 6, 7]]},
        {"values": [rows[0]]},
    ]
    declared = [dict(call, version=None) for call in plain]
    got, expected = batch(client, plain), batch(client, declared)
    assert got.status_code == expected.status_code == 200
    assert_same_answers(got.json["results"], expected.json["results"])
    assert got.json["results"][2]["errors"] and got.json["results"][6]["errors"][0]["row"] == 0


def _expanded(result, groups):
    """A compact result in the full form, as the add-in's ``expand`` reads it."""
    if "error" in result:
        return result
    group = groups[result["group"]]
    full = {"model": group["model"], "version": group["version"],
            "header": result.get("header", False), "predictions": result["predictions"],
            "errors": result.get("errors", []), "blank": result.get("blank", [])}
    if "probabilities" in result:
        full.update(probabilities=result["probabilities"], classes=group["classes"])
    return full


@pytest.mark.parametrize("probabilities", [True, False])
def test_batch_compact_answer_is_the_full_one_without_repeats(client, demo_files, demo_registered,
                                                              probabilities):
    register_file(client, "second", demo_files["artifact"], demo_files["sample"])
    rows = jsonable(churn_rows(6))
    calls = [{"model": "churn" if i % 2 else "second", "values": [r]} for i, r in enumerate(rows)]
    calls += [
        {"model": "churn", "values": [[12, "abc", "month-to-month", "electronic-check", 3,
                                       "fiber"]]},
        {"model": "nope", "values": [ROW]},
        {"model": "churn", "values": [ROW, ["", "", "", "", "", ""]]},
        {"model": "second", "values": [FEATURES, ROW]},
        {"model": "churn", "version": 1, "values": [ROW]},
    ]
    full = batch(client, calls, probabilities=probabilities).json
    compact = batch(client, calls, probabilities=probabilities, compact=True).json
    assert "groups" not in full
    # what calls share is said once per model version; nothing unset is sent
    assert sorted((g["model"], g["version"]) for g in compact["groups"]) == \
        [("churn", 1), ("second", 1)]
    assert all(g["classes"] == (["no", "yes"] if probabilities else None)
               for g in compact["groups"])
    plain = compact["results"][0]
    assert set(plain) == {"group", "predictions"} | ({"probabilities"} if probabilities else set())
    assert [_expanded(r, compact["groups"]) for r in compact["results"]] == full["results"]
    assert len(json.dumps(compact)) < len(json.dumps(full))
