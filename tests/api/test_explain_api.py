"""Explanations through every client: the same reasons for the same rows from the JSON API, CSV,
the Excel batch endpoint, workbook scoring and batch jobs (in process and on Dask)."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from openpyxl import load_workbook
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from tests.conftest import assert_problem, churn_rows, jsonable, register_file

pytest.importorskip("shap")
ROWS = churn_rows(12, seed=5)
ROWS.loc[2, "monthly_charges"] = np.nan


def _json(client: Any, explain: Any, rows: pd.DataFrame = ROWS) -> dict[str, Any]:
    resp = client.post("/api/v1/models/churn/predict", scope="score",
                       json={"rows": jsonable(rows), "options": {"explain": explain}})
    assert resp.status_code == 200, resp.json
    return resp.json


def _texts(body: dict[str, Any]) -> list[list[str]]:
    return [[r["text"] for r in e["reasons"]] for e in body["explanations"]]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_client_gives_the_same_reasons(client: Any, services: Any, demo_registered: Any,
                                             demo_model: Any) -> None:
    body = _json(client, 3)
    assert body["explained"]["output"] == "log-odds" and "exact" in body["explained"]["method"]
    final, z = demo_model[-1], demo_model[:-1].transform(ROWS)
    raw = final.decision_function(z)
    for e, r in zip(body["explanations"], raw):
        assert abs(e["base"] + sum(e["contributions"].values()) - r) < 1e-6
        assert len(e["reasons"]) == 3 and e["class"] == "yes"
        assert set(e["contributions"]) == set(ROWS.columns)
    expected = _texts(body)
    assert "monthly_charges = missing" in " ".join(t for row in _texts(_json(client, "all"))
                                                   for t in row)
    # CSV in, CSV out
    resp = client.post("/api/v1/models/churn/predict?explain=3", scope="score",
                       data=ROWS.to_csv(index=False), content_type="text/csv",
                       headers={"Accept": "text/csv"})
    assert resp.status_code == 200, resp.data[:300]
    table = pd.read_csv(io.BytesIO(resp.data), keep_default_na=False)
    assert table[["reason_1", "reason_2", "reason_3"]].values.tolist() == expected
    # the Excel add-in's batch endpoint: one call per row, and one call of every row
    calls = [{"model": "churn", "values": [row], "explain": 3} for row in jsonable(ROWS)]
    calls.append({"model": "churn", "values": jsonable(ROWS), "explain": 3})
    resp = client.post("/excel/v1/batch", scope="score", json={"calls": calls})
    assert resp.status_code == 200, resp.json
    results = resp.json["results"]
    assert [r["reasons"][0] for r in results[:-1]] == expected
    assert results[-1]["reasons"] == expected
    # workbook scoring
    buf = io.BytesIO()
    ROWS.to_excel(buf, index=False)
    resp = client.post("/api/v1/models/churn/score-workbook?explain=3", scope="score",
                       data={"file": (io.BytesIO(buf.getvalue()), "book.xlsx")},
                       content_type="multipart/form-data")
    assert resp.status_code == 200
    sheet = load_workbook(io.BytesIO(resp.data)).worksheets[0]
    header = [c.value for c in sheet[1]]
    cols = [header.index(f"reason_{j}") for j in (1, 2, 3)]
    assert [[row[j] for j in cols] for row in sheet.iter_rows(min_row=2, values_only=True)] \
        == expected
    # batch jobs, in process and on Dask
    for dask in ("false", "true"):
        resp = client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(ROWS.to_csv(index=False).encode()),
                                          "in.csv"), "model": "churn", "dask": dask,
                                 "explain": "3"})
        assert resp.status_code == 202, resp.json
    assert services.runner.run_pending() == ["succeeded", "succeeded"]
    for job in services.jobs.list(10):
        out = pd.read_csv(io.BytesIO(client.get(f"/api/v1/jobs/{job.id}/result",
                                                scope="score").data), keep_default_na=False)
        assert out[["reason_1", "reason_2", "reason_3"]].values.tolist() == expected


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_explain_all_contribution_columns_and_bad_options(client: Any,
                                                          demo_registered: Any) -> None:
    body = _json(client, "all")
    resp = client.post("/api/v1/models/churn/predict?explain=all", scope="score",
                       data=ROWS.to_csv(index=False), content_type="text/csv",
                       headers={"Accept": "text/csv"})
    table = pd.read_csv(io.BytesIO(resp.data))
    for i, e in enumerate(body["explanations"]):
        assert len(e["reasons"]) == 6
        assert table.loc[i, "contribution_base"] == pytest.approx(e["base"], abs=1e-9)
        for col, v in e["contributions"].items():
            assert table.loc[i, f"contribution_{col}"] == pytest.approx(v, abs=1e-9)
    for bad in (0, 101, "some", 2.5, True):
        resp = client.post("/api/v1/models/churn/predict", scope="score",
                           json={"rows": jsonable(ROWS.head(1)), "options": {"explain": bad}})
        assert_problem(resp, 400, "options.explain")
    resp = client.post("/api/v1/models/churn/predict?explain=zero", scope="score",
                       data=ROWS.to_csv(index=False), content_type="text/csv")
    assert_problem(resp, 400, "explain")
    # a bad row is reported; the others are explained
    rows = jsonable(ROWS.head(3))
    rows[1][1] = "lots"
    resp = client.post("/api/v1/models/churn/predict", scope="score",
                       json={"rows": rows, "options": {"explain": 2, "errors": "row"}})
    assert resp.status_code == 200 and resp.json["explanations"][1] is None
    assert [len(e["reasons"]) for i, e in enumerate(resp.json["explanations"]) if i != 1] == [2, 2]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_model_without_explanations_says_so(client: Any, tmp_path: Any) -> None:
    from server.demo import NUMERIC, make_churn_data

    data = make_churn_data(300)
    model = make_pipeline(KNeighborsClassifier()).fit(data[NUMERIC].fillna(0), data["churned"])
    path = tmp_path / "knn.skops"
    sio.dump(model, path)
    sample = tmp_path / "s.csv"
    data[NUMERIC].fillna(0).to_csv(sample, index=False)
    assert register_file(client, "knn", path, sample).status_code == 201
    resp = client.post("/api/v1/models/knn/predict", scope="score",
                       json={"rows": [[1, 2.0, 3]], "options": {"explain": 3}})
    body = assert_problem(resp, 422, "explanations are not available for this model")
    assert body["type"] == "urn:scorebridge:problem:explanations-unavailable"
    resp = client.post("/excel/v1/batch", scope="score", json={"calls": [
        {"model": "knn", "values": [[1, 2.0, 3]], "explain": 3},
        {"model": "knn", "values": [[1, 2.0, 3]]}]})
    first, second = resp.json["results"]
    assert first["status"] == 422 and "not available" in first["error"]
    assert second["predictions"] and "reasons" not in second
    resp = client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(b"tenure_months,monthly_charges,support_calls\n1,2,3\n"),
                                      "in.csv"), "model": "knn", "explain": "2"})
    assert_problem(resp, 422, "not available")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_v2_and_mlflow_give_contributions_as_extra_outputs(client: Any,
                                                           demo_registered: Any) -> None:
    expected = _json(client, "all", ROWS.head(4))["explanations"]
    names = list(ROWS.columns)
    rows = jsonable(ROWS.head(4))
    resp = client.post("/v2/models/churn/infer", scope="score", json={
        "inputs": [{"name": "input", "shape": [4, 6], "datatype": "BYTES",
                    "data": [v for row in rows for v in row]}],
        "outputs": [{"name": "predict"}, {"name": "contributions"},
                    {"name": "explanation_base"}]})
    assert resp.status_code == 200, resp.json
    outputs = {o["name"]: o for o in resp.json["outputs"]}
    contrib = outputs["contributions"]
    assert contrib["shape"] == [4, 6] and contrib["parameters"]["columns"] == names
    assert contrib["data"] == [e["contributions"][c] for e in expected for c in names]
    assert outputs["explanation_base"]["data"] == [e["base"] for e in expected]
    resp = client.post("/invocations?model=churn", scope="score",
                       json={"dataframe_split": {"columns": names, "data": rows},
                             "params": {"explain": 2}})
    assert resp.status_code == 200, resp.json
    assert [[r["text"] for r in e["reasons"]] for e in resp.json["explanations"]] == \
        [[r["text"] for r in e["reasons"][:2]] for e in expected]
    resp = client.post("/invocations?model=churn", scope="score",
                       json={"dataframe_split": {"columns": names, "data": rows},
                             "params": {"explain": -1}})
    assert_problem(resp, 400, "params.explain")
