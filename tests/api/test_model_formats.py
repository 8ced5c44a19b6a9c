"""ONNX graphs and MLflow model folders registered through the HTTP API score as their sources do,
through the JSON API, CSV, the Excel batch endpoint and batch jobs; hostile ones are refused."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from server.scoring.mlflow_model import zip_folder
from tests.conftest import assert_problem, jsonable, register_file
from tests.model_formats import (
    NUMBERS,
    graphs,
    pickle_payload,
    save_mlflow_onnx,
    save_mlflow_sklearn,
    sources,
)

HELD_OUT = 40  # rows the models did not see (frame() with another seed)


def held_out() -> pd.DataFrame:
    from tests.model_formats import frame

    return frame(HELD_OUT, seed=97)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _sample(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "sample.csv"
    frame.to_csv(path, index=False)
    return path


def _predict(client, name: str, X: pd.DataFrame) -> dict:
    resp = client.post(f"/api/v1/models/{name}/predict", scope="score",
                       json={"columns": {c: [r[0] for r in jsonable(X[[c]])]
                                         for c in X.columns}})
    assert resp.status_code == 200, resp.json
    return resp.json


def _job(client, services, name: str, X: pd.DataFrame, dask: bool = False) -> pd.DataFrame:
    resp = client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(X.to_csv(index=False).encode()), "in.csv"),
                             "model": name, "dask": "true" if dask else "false"})
    assert resp.status_code == 202, resp.json
    assert services.runner.run_pending() == ["succeeded"]
    return pd.read_csv(io.BytesIO(client.get(f"/api/v1/jobs/{resp.json['id']}/result",
                                             scope="score").data))


def test_an_onnx_classifier_scores_as_its_source_everywhere(client, services, tmp_path):
    src, X = sources()["classifier"], held_out()
    resp = register_file(client, "churn-onnx", _write(tmp_path, "churn.onnx",
                                                      graphs()["classifier"]),
                         _sample(tmp_path, sources()["X"]))
    assert resp.status_code == 201, resp.json
    info = resp.json
    assert info["format"] == "onnx" and not info["trusted_pickle"]
    assert info["runtime"] == {"engine": "onnxruntime",
                               "note": "onnxruntime: the model is an ONNX graph, run as registered"}
    inputs = {c["name"]: c for c in info["signature"]["inputs"]}
    assert {n: c["type"] for n, c in inputs.items()} == {
        "city": "string", "age": "number", "plan": "string", "visits": "integer"}
    assert inputs["plan"]["categories"] == ["basic", "plus", "pro"]
    assert info["signature"]["output"]["classes"] == ["leaves", "stays"]
    expected, expected_p = src.predict(X).tolist(), src.predict_proba(X)

    out = _predict(client, "churn-onnx", X)
    assert out["predictions"] == expected
    np.testing.assert_allclose(out["probabilities"], expected_p, atol=1e-5)

    csv = client.post("/api/v1/models/churn-onnx/predict", data=X.to_csv(index=False),
                      content_type="text/csv", headers={"Accept": "text/csv"}, scope="score")
    back = pd.read_csv(io.StringIO(csv.get_data(as_text=True)))
    assert back["prediction"].tolist() == expected
    np.testing.assert_allclose(back[["probability_leaves", "probability_stays"]], expected_p,
                               atol=1e-5)

    batch = client.post("/excel/v1/batch", scope="score", json={"calls": [
        {"model": "churn-onnx", "values": [row]} for row in jsonable(X.head(10))]})
    assert batch.status_code == 200, batch.json
    assert [r["predictions"][0] for r in batch.json["results"]] == expected[:10]

    job = _job(client, services, "churn-onnx", X)
    assert job["prediction"].tolist() == expected

    report = client.get("/models/churn-onnx/report", scope="read")
    assert report.status_code == 200 and "churn-onnx" in report.get_data(as_text=True)


def test_onnx_regressor_and_single_tensor_graph(client, services, tmp_path):
    X = held_out()
    resp = register_file(client, "spend-onnx", _write(tmp_path, "spend.onnx",
                                                      graphs()["regressor"]))  # no sample
    assert resp.status_code == 201, resp.json
    assert resp.json["signature"]["output"]["kind"] == "regression"
    out = _predict(client, "spend-onnx", X)
    np.testing.assert_allclose(out["predictions"], sources()["regressor"].predict(X), rtol=1e-5)
    job = _job(client, services, "spend-onnx", X)
    np.testing.assert_allclose(job["prediction"], sources()["regressor"].predict(X), rtol=1e-5)

    tensor = _write(tmp_path, "tier.onnx", graphs()["tensor"])
    numbers = sources()["X"][NUMBERS]
    resp = register_file(client, "tier-onnx", tensor, _sample(tmp_path, numbers))
    assert resp.status_code == 201, resp.json
    assert [c["name"] for c in resp.json["signature"]["inputs"]] == NUMBERS
    out = _predict(client, "tier-onnx", X[NUMBERS])
    assert out["predictions"] == sources()["tensor"].predict(
        X[NUMBERS].values.astype(np.float32)).tolist()
    # a sample wider than the tensor is refused, naming what the graph takes
    assert_problem(register_file(client, "tier-onnx", tensor, _sample(tmp_path, X)), 422,
                   "lacks the model's input columns")


def test_mlflow_zips_register_with_their_signature_and_example(client, services, tmp_path):
    X = held_out()
    skops = save_mlflow_sklearn(sources()["mlflow"], tmp_path / "sk", sources()["X"])
    resp = register_file(client, "churn-mlflow", _write(tmp_path, "sk.zip", zip_folder(skops)))
    assert resp.status_code == 201, resp.json  # no sample: the input example is the sample
    info = resp.json
    assert info["format"] == "mlflow" and not info["trusted_pickle"]
    inputs = {c["name"]: c for c in info["signature"]["inputs"]}
    assert inputs["visits"]["type"] == "integer" and inputs["age"]["type"] == "number"
    assert inputs["city"]["categories"] == ["Graz", "Lyon", "Oslo", "Porto"]  # the encoder's
    out = _predict(client, "churn-mlflow", X)
    assert out["predictions"] == sources()["mlflow"].predict(X).tolist()
    np.testing.assert_allclose(out["probabilities"], sources()["mlflow"].predict_proba(X),
                               atol=1e-12)
    # a Dask worker loads the stored zip as the server's cache does
    job = _job(client, services, "churn-mlflow", X, dask=True)
    assert job["prediction"].tolist() == sources()["mlflow"].predict(X).tolist()

    onnx = save_mlflow_onnx(graphs()["classifier"], tmp_path / "ox", sources()["X"])
    resp = register_file(client, "churn-mlflow-onnx",
                         _write(tmp_path, "ox.zip", zip_folder(onnx)))
    assert resp.status_code == 201, resp.json
    assert resp.json["runtime"]["engine"] == "onnxruntime"
    out = _predict(client, "churn-mlflow-onnx", X)
    assert out["predictions"] == sources()["classifier"].predict(X).tolist()


def test_a_sample_contradicting_the_mlflow_signature_is_refused(client, tmp_path):
    skops = save_mlflow_sklearn(sources()["mlflow"], tmp_path / "sk", sources()["X"])
    wrong = sources()["X"].assign(visits=lambda f: f.visits.map(lambda v: f"n{v}"))
    assert_problem(register_file(client, "m", _write(tmp_path, "sk.zip", zip_folder(skops)),
                                 _sample(tmp_path, wrong)), 422,
                   "'visits' is declared integer", "string")


def test_a_pickled_mlflow_model_needs_an_admin_and_trust(client, tmp_path):
    folder = save_mlflow_sklearn(sources()["mlflow"], tmp_path / "cp", sources()["X"],
                                 "cloudpickle")
    path = _write(tmp_path, "cp.zip", zip_folder(folder))
    assert_problem(register_file(client, "cp", path), 422, "serialized with cloudpickle",
                   "--trust-pickle")
    trusting = '{"trust_pickle": true}'
    assert_problem(register_file(client, "cp", path, metadata=trusting), 403, "admin")
    resp = register_file(client, "cp", path, metadata=trusting, scope="admin")
    assert resp.status_code == 201, resp.json
    assert resp.json["format"] == "mlflow" and resp.json["trusted_pickle"]
    out = _predict(client, "cp", held_out())
    assert out["predictions"] == sources()["mlflow"].predict(held_out()).tolist()


def test_a_pickle_payload_in_an_mlflow_zip_never_runs(client, tmp_path):
    """A model.pkl that would create a marker file when unpickled: refused without trust and
    for a key that is not an admin's, and the marker never appears."""
    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("MLmodel", "flavors:\n  sklearn:\n    pickled_model: model.pkl\n"
                                    "    serialization_format: cloudpickle\n")
        archive.writestr("model.pkl", pickle_payload(marker))
    path = _write(tmp_path, "payload.zip", buffer.getvalue())
    assert_problem(register_file(client, "payload", path), 422, "cloudpickle (model.pkl)")
    assert_problem(register_file(client, "payload", path, metadata='{"trust_pickle": true}'),
                   403, "admin")
    assert not marker.exists()


@pytest.mark.parametrize("case", ["custom-domain", "outside", "member", "none"])
def test_hostile_artifacts_are_refused_over_http(client, tmp_path, case):
    from onnx import TensorProto, helper

    if case == "custom-domain":
        graph = helper.make_graph(
            [helper.make_node("Exec", ["X"], ["Y"], domain="com.example.exec")], "g",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                        helper.make_opsetid("com.example.exec",
                                                                            1)])
        path, fragments = _write(tmp_path, "m.onnx", model.SerializeToString()), \
            ("'Exec'", "custom domain 'com.example.exec'")
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            if case != "none":
                data = "../../x" if case == "outside" else "model.onnx"
                archive.writestr("MLmodel", f"flavors:\n  onnx:\n    data: {data}\n")
            archive.writestr("../model.onnx" if case == "member" else "model.onnx",
                             graphs()["tensor"])
        path = _write(tmp_path, "m.zip", buffer.getvalue())
        fragments = {"outside": ("flavors.onnx.data = '../../x'", "outside the model folder"),
                     "member": ("'../model.onnx'", "outside the model folder"),
                     "none": ("MLmodel",)}[case]
    assert_problem(register_file(client, "hostile", path), 422, *fragments)
    assert client.get("/api/v1/models/hostile").status_code == 404
