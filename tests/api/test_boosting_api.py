"""XGBoost, LightGBM and CatBoost models registered over HTTP and scored by every route that
matters to their users: the JSON API, a batch job and the Excel batch endpoint, equal to the
library on held-out rows with missing values and unseen categories; numeric XGBoost and
LightGBM models on native trees."""
from __future__ import annotations

import io
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest

from server.app import create_app
from server.config import Settings
from tests.boosters import MODELS, held_out, library_answers, make, model, sample, save, table
from tests.conftest import PROBABILITY_TOLERANCE, KeyClient, register_file

NUMERIC = {"xgboost-numeric": ("xgboost", "multiclass"), "lightgbm-numeric": ("lightgbm", "binary")}
ENGINES = {"xgboost": "XGBoost", "lightgbm": "LightGBM", "catboost": "CatBoost"}


@pytest.fixture(scope="module")
def numeric() -> dict[str, Any]:
    frame = table(240, seed=1).drop(columns="city")
    return {name: make(lib, kind, frame=frame) for name, (lib, kind) in NUMERIC.items()}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           numeric: dict[str, Any]) -> Iterator[tuple[KeyClient, Any]]:
    """One app (SQLite, native trees on) with every booster registered over HTTP."""
    folder = tmp_path_factory.mktemp("boosters")
    app = create_app(Settings(home=folder / "home", background=False, rate_limiting=False,
                              prediction_log_rows_per_second=0))
    app.config["TESTING"] = True
    svc = app.extensions["scorebridge"]
    key = svc.keys.create("admin", "boosters")[0]
    client = KeyClient(app.test_client(), {s: key for s in ("score", "read", "deploy",
                                                              "admin")})
    estimators = {**{name: model(name) for name in MODELS}, **numeric}
    for name, estimator in estimators.items():
        lib = name.split("-")[0]
        rows = sample(lib) if name in MODELS else table(60, seed=3).drop(columns="city")
        csv = folder / f"{name}.csv"
        rows.to_csv(csv, index=False)
        resp = register_file(client, name, save(estimator, folder, name), csv)
        assert resp.status_code == 201, resp.json
    yield client, svc
    svc.registry.engine.dispose()


def rows_for(name: str) -> pd.DataFrame:
    rows = held_out()
    return rows if name in MODELS else rows.drop(columns="city")


def estimator_for(name: str, numeric: dict[str, Any]) -> Any:
    return numeric[name] if name in numeric else model(name)


def expected(name: str, numeric: dict[str, Any]) -> tuple[list[int], np.ndarray,
                                                            np.ndarray | None]:
    """(the rows the library scores, its labels or values, its probabilities). CatBoost takes
    no missing category: those rows are errors for it and for ScoreBridge alike."""
    rows = rows_for(name)
    lib = name.split("-")[0]
    ok = [i for i in range(len(rows)) if lib != "catboost" or pd.notna(rows["city"][i])]
    labels, probs = library_answers(estimator_for(name, numeric), lib,
                                    rows.iloc[ok].reset_index(drop=True))
    return ok, labels, probs


def assert_equal(name: str, got_labels: list, got_probs: list | None,
                 labels: np.ndarray, probs: np.ndarray | None) -> None:
    if probs is None:
        np.testing.assert_allclose(np.asarray(got_labels, dtype=float), labels, rtol=1e-6)
    else:
        assert got_labels == labels.tolist(), name
        np.testing.assert_allclose(np.asarray(got_probs, dtype=float), probs, rtol=0,
                                   atol=PROBABILITY_TOLERANCE)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and np.isnan(v) else
                 v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


def test_each_version_names_its_engine(served):
    client, _ = served
    for name in [*MODELS, *NUMERIC]:
        runtime = client.get(f"/api/v1/models/{name}/versions/1", scope="read").json["runtime"]
        if name in NUMERIC:
            assert runtime["engine"] == "treelite", runtime
            assert runtime["note"].startswith("treelite (native trees): verified")
        else:
            lib = name.split("-")[0]
            assert runtime["engine"] == ENGINES[lib], runtime
            assert runtime["note"].startswith(f"{ENGINES[lib]}'s own predictor (")


@pytest.mark.parametrize("name", [*MODELS, *NUMERIC])
def test_json_api_equals_the_library(served, numeric, name):
    client, _ = served
    rows = rows_for(name)
    resp = client.post(f"/api/v1/models/{name}/predict", scope="score",
                       json={"records": records(rows), "options": {"errors": "row"}})
    assert resp.status_code == 200, resp.json
    out = resp.json
    ok, labels, probs = expected(name, numeric)
    errors = out.get("errors", [])
    assert {e["row"] for e in errors} == set(range(len(rows))) - set(ok)
    assert all(e["column"] == "city" and "missing value" in e["message"] for e in errors)
    assert_equal(name, [out["predictions"][i] for i in ok],
                 [out["probabilities"][i] for i in ok] if probs is not None else None,
                 labels, probs)


def test_batch_job_equals_the_library(served, numeric):
    """One CSV job per model, run in process: the results file holds the library's answers
    (CatBoost's rows without a city carry the error instead)."""
    client, svc = served
    ids = {}
    for name in [*MODELS, *NUMERIC]:
        data = rows_for(name).to_csv(index=False).encode()
        resp = client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(data), "in.csv"), "model": name})
        assert resp.status_code == 202, resp.json
        ids[name] = resp.json["id"]
    assert set(svc.runner.run_pending()) == {"succeeded"}
    for name, job in ids.items():
        back = pd.read_csv(io.BytesIO(client.get(f"/api/v1/jobs/{job}/result",
                                                 scope="score").data),
                           dtype={"prediction": str})  # labels as written
        ok, labels, probs = expected(name, numeric)
        failed = sorted(set(range(len(back))) - set(ok))
        assert back["prediction"].isna().to_numpy().nonzero()[0].tolist() == failed, name
        assert all(str(e).startswith("city: missing value") for e in back.loc[failed, "error"])
        got = back.loc[ok, "prediction"]
        if probs is None:
            assert_equal(name, got.astype(float).tolist(), None, labels, None)
        else:
            columns = [f"probability_{c}" for c in estimator_for(name, numeric).classes_]
            assert_equal(name, got.tolist(), back.loc[ok, columns].to_numpy(),
                         labels.astype(str), probs)


def test_excel_batch_equals_the_library(served, numeric):
    """The add-in's batch endpoint, one call per worksheet row (empty cells as Excel sends
    them), for every model in one request."""
    client, _ = served
    calls, where = [], []
    for name in [*MODELS, *NUMERIC]:
        for i, row in enumerate(rows_for(name).itertuples(index=False)):
            calls.append({"model": name, "values": [["" if v is None or (
                isinstance(v, float) and np.isnan(v)) else
                (v.item() if hasattr(v, "item") else v) for v in row]]})
            where.append((name, i))
    resp = client.post("/excel/v1/batch", scope="score", json={"calls": calls})
    assert resp.status_code == 200, resp.json
    results: dict[str, dict[int, Any]] = {}
    for (name, i), result in zip(where, resp.json["results"]):
        results.setdefault(name, {})[i] = result
    for name, by_row in results.items():
        ok, labels, probs = expected(name, numeric)
        for i, result in by_row.items():
            assert (result["predictions"][0] is None) == (i not in ok), (name, i, result)
        assert_equal(name, [by_row[i]["predictions"][0] for i in ok],
                     [by_row[i]["probabilities"][0] for i in ok] if probs is not None else None,
                     labels, probs)


def test_an_unseen_category_passes_with_a_warning(served):
    """Text the model never saw is scored as the library scores it, and the caller is told."""
    client, _ = served
    row = {"a": 0.2, "city": "w", "size": 2, "b": 0.1}
    out = client.post("/api/v1/models/xgboost-binary/predict", scope="score",
                      json={"records": [row]}).json
    assert out["predictions"][0] in (0, 1)
    assert any("unknown category 'w'" in w["message"] for w in out.get("warnings", []))
