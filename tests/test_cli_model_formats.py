"""``scorebridge register`` with an MLflow model folder or an ONNX graph, locally and against a
live server: the folder is zipped by the CLI, its signature and input example used."""
from __future__ import annotations

import json

import pandas as pd

from tests.live import env_for, run_cli, serve
from tests.model_formats import frame, graphs, save_mlflow_sklearn, sources
from tests.test_cli import cli  # noqa: F401 - the fixture


def test_register_an_mlflow_folder_and_an_onnx_graph_locally(cli, tmp_path):  # noqa: F811
    folder = save_mlflow_sklearn(sources()["mlflow"], tmp_path / "churn_model", sources()["X"])
    info = json.loads(cli("register", str(folder), "--name", "churn", "--json").stdout)
    assert info["format"] == "mlflow" and info["version"] == 1
    assert [c["name"] for c in info["signature"]["inputs"]] == ["city", "age", "plan", "visits"]
    # the same folder zips to the same bytes: the same checksum
    again = json.loads(cli("register", str(folder), "--name", "churn", "--json").stdout)
    assert again["sha256"] == info["sha256"]
    X = frame(25, seed=41)
    X.to_csv(tmp_path / "in.csv", index=False)
    cli("score", "churn", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"))
    assert pd.read_csv(tmp_path / "out.csv")["prediction"].tolist() == \
        sources()["mlflow"].predict(X).tolist()

    graph = tmp_path / "spend.onnx"
    graph.write_bytes(graphs()["regressor"])
    out = cli("register", str(graph), "--name", "spend", "--json").stdout
    assert json.loads(out)["runtime"]["engine"] == "onnxruntime"


def test_a_pickled_mlflow_folder_needs_trust_pickle(cli, tmp_path):  # noqa: F811
    folder = save_mlflow_sklearn(sources()["mlflow"], tmp_path / "cp", sources()["X"],
                                 "cloudpickle")
    refused = cli("register", str(folder), "--name", "cp", ok=False)
    assert refused.exit_code == 1
    assert "serialized with cloudpickle" in refused.output and "--trust-pickle" in refused.output
    info = json.loads(cli("register", str(folder), "--name", "cp", "--trust-pickle",
                          "--json").stdout)
    assert info["trusted_pickle"] is True
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    assert "no MLmodel file" in cli("register", str(empty), "--name", "x", ok=False).output


def test_register_an_mlflow_folder_on_a_remote_server(tmp_path):
    folder = save_mlflow_sklearn(sources()["mlflow"], tmp_path / "churn_model", sources()["X"])
    env = env_for(tmp_path / "home")
    admin = run_cli("keys", "create", "--scope", "admin", env=env).stdout.strip()
    server = serve(env)
    try:
        remote = env_for(tmp_path / "elsewhere", SCOREBRIDGE_URL=server.url,
                         SCOREBRIDGE_API_KEY=admin)
        info = json.loads(run_cli("register", str(folder), "--name", "churn", "--json",
                                  env=remote).stdout)
        assert info["format"] == "mlflow" and info["created_by"].startswith("key:")
        X = frame(12, seed=43)
        X.to_csv(tmp_path / "in.csv", index=False)
        run_cli("score", "churn", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"),
                env=remote)
        assert pd.read_csv(tmp_path / "out.csv")["prediction"].tolist() == \
            sources()["mlflow"].predict(X).tolist()
        assert not (tmp_path / "elsewhere").exists()
    finally:
        server.stop()
