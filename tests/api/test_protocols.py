"""MLflow's scoring protocol, the Open Inference Protocol (KServe V2) and Tableau's TabPy API give
the same predictions as the native API, refuse bad input in their own error format, and never run
a script."""
from __future__ import annotations

import numpy as np
import pytest

from server.demo import FEATURES
from tests.conftest import assert_problem, churn_rows, jsonable, register_file

ROW = [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"]


@pytest.fixture
def native(client, demo_registered):
    frame = churn_rows(12)
    resp = client.post("/api/v1/models/churn/predict", json={"rows": jsonable(frame)},
                       scope="score")
    return frame, resp.json


def test_mlflow_shapes_and_csv_match_the_native_api(client, native):
    frame, expected = native
    rows = jsonable(frame)
    records = [dict(zip(FEATURES, r)) for r in rows]
    bodies = [
        {"dataframe_split": {"columns": FEATURES, "data": rows}},
        {"dataframe_records": records},
        {"instances": records},
        {"inputs": {f: [r[i] for r in rows] for i, f in enumerate(FEATURES)}},
        {"inputs": records, "params": {"ignored": True}},
    ]
    for body in bodies:
        resp = client.post("/invocations", json=body, scope="score", headers={"X-Model": "churn"})
        assert resp.status_code == 200, resp.json
        assert resp.json == {"predictions": expected["predictions"]}
    resp = client.post("/invocations?model=churn", data=frame.to_csv(index=False),
                       content_type="text/csv", scope="score")
    assert resp.json["predictions"] == expected["predictions"]
    # the only model is the default
    assert client.post("/invocations", json=bodies[0], scope="score").json == \
        {"predictions": expected["predictions"]}


def test_mlflow_errors(client, native, wine):
    body = {"dataframe_split": {"columns": FEATURES, "data": [[1, "x", "a", "b", 1, "c"]]}}
    resp = client.post("/invocations", json=body, scope="score")
    problem = assert_problem(resp, 422, "monthly_charges")
    assert problem["error_code"] == "BAD_REQUEST" and problem["message"] == problem["detail"]
    problem = assert_problem(client.post("/invocations", json={"rows": [ROW]}, scope="score"),
                             400, "exactly one of")
    assert problem["error_code"] == "BAD_REQUEST"
    assert_problem(client.post("/invocations", json={"instances": [], "inputs": []},
                               scope="score"), 400, "exactly one of")
    assert_problem(client.post("/invocations", data="x", content_type="text/plain",
                               scope="score"), 415)
    problem = assert_problem(client.post("/invocations", json={"instances": []},
                                         headers={"X-Model": "nope"}, scope="score"), 404)
    assert problem["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    register_file(client, "wine", wine["path"], wine["sample"])
    assert_problem(client.post("/invocations", json={"instances": []}, scope="score"), 422,
                   "name the model")
    assert client.get("/ping", scope=None).status_code == 200
    assert client.get("/health", scope=None).status_code == 200
    assert client.get("/version", scope=None).get_data(as_text=True)


def test_v2_metadata(client, native):
    assert client.get("/v2", scope=None).json["name"] == "scorebridge"
    assert client.get("/v2/health/live", scope=None).json == {"live": True}
    assert client.get("/v2/health/ready", scope=None).json == {"ready": True}
    meta = client.get("/v2/models/churn", scope="read").json
    assert meta["versions"] == ["1"] and meta["platform"] == "scikit-learn"
    assert meta["inputs"][0] == {"name": "tenure_months", "datatype": "INT64", "shape": [-1]}
    assert meta["inputs"][2]["datatype"] == "BYTES"
    assert meta["outputs"] == [{"name": "predict", "datatype": "BYTES", "shape": [-1]},
                               {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]}]
    assert client.get("/v2/models/churn/versions/1", scope="read").json["name"] == "churn"
    assert client.get("/v2/models/churn/ready", scope="read").json == {"name": "churn",
                                                                      "ready": True}
    problem = assert_problem(client.get("/v2/models/churn/versions/7", scope="read"), 404)
    assert problem["error"] == problem["detail"]


def test_v2_infer_both_layouts(client, native):
    frame, expected = native
    rows = jsonable(frame)
    n = len(rows)
    per_column = {"id": "req-1", "inputs": [
        {"name": f, "shape": [n] if i % 2 else [n, 1],
         "datatype": "BYTES" if isinstance(rows[0][i], str) else "FP64",
         "data": [r[i] for r in rows] if i % 2 else [[r[i]] for r in rows]}
        for i, f in enumerate(FEATURES)]}
    one_tensor = {"inputs": [{"name": "input-0", "shape": [n, 6], "datatype": "BYTES",
                              "data": rows}]}
    for body in (per_column, one_tensor):
        resp = client.post("/v2/models/churn/infer", json=body, scope="score")
        assert resp.status_code == 200, resp.json
        out = {o["name"]: o for o in resp.json["outputs"]}
        assert out["predict"]["data"] == expected["predictions"]
        assert out["predict"]["shape"] == [n] and out["predict"]["datatype"] == "BYTES"
        assert out["predict_proba"]["shape"] == [n, 2]
        assert np.array_equal(np.array(out["predict_proba"]["data"]).reshape(n, 2),
                              np.array(expected["probabilities"]))
        assert resp.json["model_name"] == "churn" and resp.json["model_version"] == "1"
    assert client.post("/v2/models/churn/infer", json=per_column, scope="score").json["id"] == "req-1"
    only = dict(one_tensor, outputs=[{"name": "predict"}])
    resp = client.post("/v2/models/churn/versions/1/infer", json=only, scope="score")
    assert [o["name"] for o in resp.json["outputs"]] == ["predict"]


@pytest.mark.parametrize("body, status, fragment", [
    ({}, 400, "inputs"),
    ({"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1]}]}, 400,
     "needs 2 values"),
    ({"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]}, 400,
     "unknown datatype"),
    ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [[1, 2, 3]]}]}, 400,
     "shape [N] or [N, 1]"),
    ({"inputs": [{"name": "input-0", "shape": [1, 6], "datatype": "BYTES",
                  "data": [ROW]}], "outputs": [{"name": "logits"}]}, 400, "unknown output"),
    ({"inputs": [{"name": "tenure_months", "shape": [1], "datatype": "INT64", "data": [1]}]},
     422, "missing column"),
    ({"inputs": [{"name": "input-0", "shape": [1, 6], "datatype": "BYTES",
                  "data": [[1, "abc", "month-to-month", "electronic-check", 3, "fiber"]]}]},
     422, "monthly_charges"),
])
def test_v2_errors(client, native, body, status, fragment):
    problem = assert_problem(client.post("/v2/models/churn/infer", json=body, scope="score"),
                             status, fragment)
    assert problem["error"] == problem["detail"]


def test_tabpy_evaluate_and_query(client, native):
    frame, expected = native
    rows = jsonable(frame)
    data = {f"_arg{i + 1}": [r[i] for r in rows] for i in range(6)}
    script = "return tabpy.query('churn', _arg1, _arg2, _arg3, _arg4, _arg5, _arg6)['response']"
    resp = client.post("/evaluate", json={"script": script, "data": data}, scope="score")
    assert resp.status_code == 200 and resp.json == expected["predictions"]
    spaced = 'return  tabpy.query( "churn",_arg1 ,_arg2,_arg3,_arg4,_arg5,_arg6 ) [ "response" ];'
    assert client.post("/evaluate", json={"script": spaced, "data": data},
                       scope="score").json == expected["predictions"]
    resp = client.post("/query/churn", json={"data": data}, scope="score")
    assert resp.json["response"] == expected["predictions"] and resp.json["version"] == 1
    named = {f: [r[i] for r in rows] for i, f in enumerate(FEATURES)}
    assert client.post("/query/churn", json={"data": named},
                       scope="score").json["response"] == expected["predictions"]
    info = client.get("/info", scope="score").json
    assert info["versions"]["v1"]["features"]["authentication"]["required"] is True


@pytest.mark.parametrize("script", [
    "import os; os.system('touch /tmp/pwned')",
    "return tabpy.query('churn', _arg1)['response']; import os",
    "return __import__('os').system('id')",
    "return tabpy.query('churn', _arg1)['response'] + eval('1')",
    "return tabpy.query(open('/etc/passwd').read(), _arg1)['response']",
    "return tabpy.query('churn', _arg2, _arg1)['response']",
    "return tabpy.query('Churn', _arg1)['response']",
    "return tabpy.query('churn', _arg1)['other']",
    "return [1, 2, 3]",
    "",
    None,
    "x" * 5000,
])
def test_any_other_script_is_refused_and_never_run(client, native, script, tmp_path):
    resp = client.post("/evaluate", json={"script": script, "data": {"_arg1": [1]}},
                       scope="score")
    problem = assert_problem(resp, 400)
    assert "never executed" in problem["detail"] or "must be" in problem["detail"] \
        or "in order" in problem["detail"]
    assert problem["message"] == problem["detail"]


def test_tabpy_basic_auth_and_errors(client, keys, native):
    import base64

    auth = {"Authorization": "Basic " + base64.b64encode(f"tableau:{keys['score']}".encode())
            .decode()}
    assert client.client.get("/info", headers=auth).status_code == 200
    assert client.client.get("/info").status_code == 401
    script = "return tabpy.query('churn', _arg1, _arg2)['response']"
    assert_problem(client.post("/evaluate", json={"script": script,
                                                  "data": {"_arg1": [1], "_arg2": [2]}},
                               scope="score"), 422, "expected 6 values per row")
    assert_problem(client.post("/evaluate", json={"script": script, "data": {"_arg1": [1]}},
                               scope="score"), 400, "lacks _arg2")
    assert_problem(client.post("/query/nope", json={"data": {"_arg1": [1]}}, scope="score"), 404)


@pytest.mark.slow
def test_a_real_v2_client(tmp_path, demo_files, demo_model):
    """tritonclient (an Open Inference Protocol client from PyPI) against a live server."""
    import tritonclient.http as httpclient

    from tests.live import env_for, serve, setup_cli

    env = env_for(tmp_path / "home")
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
              str(demo_files["sample"]), env=env)
    key = setup_cli("keys", "create", "--scope", "score,read", env=env).stdout.strip()
    server = serve(env)
    client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
    try:
        headers = {"X-API-Key": key}
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("churn", headers=headers)
        meta = client.get_model_metadata("churn", headers=headers)
        assert [i["name"] for i in meta["inputs"]] == FEATURES
        frame = churn_rows(7)
        inputs = []
        for name in FEATURES:
            values = frame[name].to_numpy()
            if values.dtype == object:
                tensor = httpclient.InferInput(name, [7], "BYTES")
                tensor.set_data_from_numpy(values.astype(object))
            else:
                tensor = httpclient.InferInput(name, [7], "FP64")
                tensor.set_data_from_numpy(values.astype(np.float64))
            inputs.append(tensor)
        result = client.infer("churn", inputs, headers=headers,
                              outputs=[httpclient.InferRequestedOutput("predict"),
                                       httpclient.InferRequestedOutput("predict_proba")])
        labels = [v.decode() if isinstance(v, bytes) else v
                  for v in result.as_numpy("predict").tolist()]
        assert labels == demo_model.predict(frame).tolist()
        assert np.allclose(result.as_numpy("predict_proba"), demo_model.predict_proba(frame))
        from tritonclient.utils import InferenceServerException

        with pytest.raises(InferenceServerException, match="no model named"):
            client.infer("nope", inputs, headers=headers)
    finally:
        client.close()  # its pooled sockets, else a ResourceWarning whenever gc next runs
        server.stop()


def test_oversized_bodies_answer_in_each_protocols_format(settings, demo_files):
    from dataclasses import replace

    from server.app import create_app
    from tests.conftest import KeyClient

    app = create_app(replace(settings, max_request_bytes=2048))
    key = app.extensions["scorebridge"].keys.create("admin")[0]
    client = KeyClient(app.test_client(), {"deploy": key, "score": key})
    register_file(client, "churn", demo_files["artifact"], demo_files["sample"])
    big = b"x" * 10_000
    for url, member in (("/invocations", "message"), ("/v2/models/churn/infer", "error"),
                        ("/evaluate", "message")):
        resp = client.post(url, data=big, content_type="application/json", scope="score")
        problem = assert_problem(resp, 413, "2048 bytes")
        assert problem[member] == problem["detail"]
